"""The WhatsApp worker: claims numbers, runs one supervised child process each, and
turns what happens on WhatsApp into database writes (and the outbox into sends).

It runs embedded in the web process (``manage.py serve``, one event loop with
daphne) or standalone (``manage.py whatsapp_worker``). Async code here never
touches the ORM: every unit of work is one sync service call run on the
worker's database thread(s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from conversations import selectors as conv_selectors
from conversations import services as conv_services
from conversations.models import Message
from realtime.layer import WorkerInbox
from vbcrm import metrics
from whatsapp import services
from whatsapp.gateway import base
from whatsapp.gateway.process import GATEWAYS, ChildGone, GatewayChild
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

# Which gateways accept our own message id, so a resend after a crash is dropped by
# the network as a duplicate instead of reaching the customer twice.
RESEND_SAFE = {"simulator"}


@dataclass
class WorkerConfig:
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    gateway: str = "neonize"
    lease_seconds: int = 30
    tick_seconds: float = 2.0
    silence_seconds: float = 90.0
    max_numbers: int = 100
    only_session: int | None = None
    restart_backoff_max: float = 60.0
    media_retries: int = 3

    @classmethod
    def from_settings(cls, **overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "gateway": settings.WHATSAPP_GATEWAY,
            "lease_seconds": settings.WHATSAPP_LEASE_SECONDS,
            "silence_seconds": settings.WHATSAPP_SILENCE_SECONDS,
        }
        values.update(overrides)
        return cls(**values)


class Database:
    """Runs sync ORM work off the event loop. One thread on SQLite (one writer at a
    time anyway); a small pool on PostgreSQL."""

    def __init__(self) -> None:
        self._size = 1 if connection.vendor == "sqlite" else 8
        self._pool = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix="worker-db")

    async def __call__(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, fn, kwargs)

    @staticmethod
    def _run(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        # No close_old_connections() here: with CONN_MAX_AGE=0 it would reconnect on
        # every call. A pool thread keeps its connection; a broken one is replaced below.
        try:
            return fn(**kwargs)
        except (InterfaceError, OperationalError):
            # A dropped connection (database restart): the atomic block rolled back,
            # so one retry on a fresh connection is safe.
            if connection.in_atomic_block:
                raise
            connection.close()
            return fn(**kwargs)

    @staticmethod
    async def once(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """One call on a short-lived thread, its connection closed after."""

        def call() -> Any:
            try:
                return fn(**kwargs)
            finally:
                connection.close()

        return await asyncio.to_thread(call)

    def close(self) -> None:
        """Close every pool thread's connection (each thread owns its own)."""
        barrier = threading.Barrier(self._size, timeout=10)

        def close_mine() -> None:
            try:
                barrier.wait()  # one task per thread: none can take a second one
            except threading.BrokenBarrierError:
                pass
            connection.close()

        for _ in range(self._size):
            self._pool.submit(close_mine)
        self._pool.shutdown(wait=True)


def _store_for(session_id: int) -> str:
    if settings.WHATSAPP_STORE_DSN:
        dsn = settings.WHATSAPP_STORE_DSN
        sep = "&" if "?" in dsn else "?"
        return f"{dsn}{sep}search_path=wa_{session_id}"
    settings.WHATSAPP_STORE_DIR.mkdir(parents=True, exist_ok=True)
    return str(settings.WHATSAPP_STORE_DIR / f"number-{session_id}.sqlite3")


# The extensions people expect for WhatsApp's usual types: mimetypes' own guess is odd
# for some (.oga for audio/ogg) and depends on the machine's tables.
MEDIA_EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
}


def _safe_extension(ext: str) -> bool:
    return 2 <= len(ext) <= 8 and ext[0] == "." and ext[1:].isascii() and ext[1:].isalnum()


def _media_name(message: Message) -> str:
    """Where a received file goes, relative to MEDIA_ROOT: ``YYYY/MM/in-<id><ext>``, the
    extension from its file name, else from its type (parameters such as
    ``; codecs=opus`` aside), else ``.bin``."""
    ext = Path(message.file_name).suffix.lower() if message.file_name else ""
    if not _safe_extension(ext):
        mime = (message.mime_type or "").split(";", 1)[0].strip().lower()
        ext = MEDIA_EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ""
        if not _safe_extension(ext):
            ext = ".bin"
    now = timezone.now()
    return f"{now:%Y/%m}/in-{message.pk}{ext}"


class NumberRunner:
    """Runs and supervises one number's child process while the worker holds its lease."""

    def __init__(self, worker: Worker, row: WhatsAppSession, token: uuid.UUID) -> None:
        self.worker = worker
        self.session_id = row.pk
        self.row = row
        self.token = token
        self.child: GatewayChild | None = None
        self.state = ""
        self.last_alive = time.monotonic()
        self.last_event_at: float = 0.0
        self.qr_seen = False
        self._stopping = asyncio.Event()
        self._restart = asyncio.Event()
        self._flush_requested = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._flusher: asyncio.Task | None = None
        self._media_tasks: set[asyncio.Task] = set()

    @property
    def db(self) -> Database:
        return self.worker.db

    @property
    def connected(self) -> bool:
        return self.state == base.ConnState.CONNECTED

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"number-{self.session_id}")
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"flush-{self.session_id}")

    def poke(self) -> None:
        """Look at the outbox, receipts, logout and pairing requests now."""
        self._flush_requested.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._flush_requested.set()
        if self._task is not None:
            await self._task
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        for task in list(self._media_tasks):
            task.cancel()

    # --- supervision ----------------------------------------------------------------

    def _config(self) -> base.SessionConfig:
        store = _store_for(self.session_id)
        if not self.row.jid and not settings.WHATSAPP_STORE_DSN:
            # Not linked: any keys left in the store belong to a device that no longer
            # exists, and resuming one makes the real client abort.
            Path(store).unlink(missing_ok=True)
        return base.SessionConfig(
            account=str(self.session_id),
            store=store,
            device_jid=self.row.jid,
            media_dir=str(settings.MEDIA_ROOT),
            history_days=self.row.history_days,
            options={"url": settings.WHATSAPP_SIMULATOR_URL},
        )

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            self.state = base.ConnState.STARTING
            self.qr_seen = False
            self.last_alive = time.monotonic()
            child = GatewayChild(
                self._config(), self.worker.session_path, self._on_event, self._on_messages
            )
            self.child = child
            started = time.monotonic()
            try:
                await child.start()
            except Exception:
                logger.exception("could not start child session=%s", self.session_id)
            self._restart.clear()
            exited = asyncio.create_task(child.wait_exited())
            stopping = asyncio.create_task(self._stopping.wait())
            restart = asyncio.create_task(self._restart.wait())
            await asyncio.wait({exited, stopping, restart}, return_when=asyncio.FIRST_COMPLETED)
            for t in (exited, stopping, restart):
                t.cancel()
            if self._stopping.is_set():
                await child.stop()
                self.child = None
                return
            if self._restart.is_set():
                logger.warning("restarting silent client session=%s", self.session_id)
                await child.stop(timeout=5)
            else:
                logger.warning("child exited session=%s code=%s", self.session_id, child.exitcode)
                await child.stop(timeout=1)
            self.child = None
            self.state = base.ConnState.DISCONNECTED
            metrics.CHILD_RESTARTS.inc()
            await self.db(services.session_child_restarted, session_id=self.session_id)
            await self.db(
                services.session_on_state,
                session_id=self.session_id,
                state="disconnected",
                detail="client restarting",
            )
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran fine for a while: this is a fresh failure
            delay = backoff * random.uniform(0.5, 1.5)
            backoff = min(backoff * 2, self.worker.config.restart_backoff_max)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    def check_silence(self, now: float) -> None:
        """Watchdog: a child that stopped reporting (stuck in the library) is restarted."""
        if self.child is None or self._restart.is_set():
            return
        if now - self.last_alive > self.worker.config.silence_seconds:
            self._restart.set()

    # --- events from the child ---------------------------------------------------------

    async def _on_event(self, event: base.Event) -> None:
        """Handle one event; returning means it is stored (the child may ack it)."""
        await self._retrying(self._handle, event)

    async def _on_messages(self, messages: list[base.InboundMessage]) -> None:
        """Several inbound messages that queued up: stored in one transaction."""
        await self._retrying(self._handle_messages, messages)

    async def _retrying(self, handler: Callable[[Any], Any], arg: Any) -> None:
        delay = 0.5
        while True:
            try:
                return await handler(arg)
            except (OperationalError, InterfaceError):
                # Database down or locked: hold this number's events (nothing is
                # acknowledged meanwhile) and try again, rather than drop one.
                if self._stopping.is_set():
                    raise
                logger.warning("database unavailable; retrying session=%s", self.session_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _handle(self, event: base.Event) -> None:
        self.last_alive = time.monotonic()
        if isinstance(event, base.Alive):
            if not event.connected and self.connected:
                # Reported connected, but the library says the socket is gone and no
                # Disconnected event came: don't reset the silence clock.
                self.last_alive -= self.worker.config.tick_seconds
            return
        self.last_event_at = time.time()
        match event:
            case base.InboundMessage():
                await self._on_message(event)
            case base.Receipt():
                await self.db(
                    conv_services.message_receipt,
                    session=self.row,
                    message_ids=event.message_ids,
                    status=event.status,
                )
            case base.StateChanged():
                await self._on_state(event)
            case base.QRCode():
                self.qr_seen = True
                await self.db(services.session_on_qr, session_id=self.session_id, code=event.code)
                if self.row.pair_phone:
                    self.poke()
            case base.Paired():
                await self._on_paired(event)
            case base.HistoryBatch():
                await self.db(
                    conv_services.history_import, session=self.row, messages=event.messages
                )

    async def _on_state(self, event: base.StateChanged) -> None:
        state = base.ConnState(event.state)
        if state == base.ConnState.STOPPED:
            return
        self.state = state
        row = await self.db(
            services.session_on_state,
            session_id=self.session_id,
            state=state.value,
            detail=event.detail,
        )
        if row is not None:
            self.row = row
        if state == base.ConnState.CONNECTED:
            self.poke()
        if state in (base.ConnState.LOGGED_OUT, base.ConnState.PAIRING_EXPIRED):
            # Nothing to run until someone links the number again.
            self.worker.drop(self.session_id)

    async def _on_paired(self, event: base.Paired) -> None:
        try:
            row = await self.db(
                services.session_on_paired,
                session_id=self.session_id,
                jid=event.jid,
                phone=event.phone,
                push_name=event.push_name,
            )
        except ValidationError:
            logger.warning("unlinking a phone linked twice session=%s", self.session_id)
            if self.child is not None:
                try:
                    await self.child.request(base.Logout(), timeout=30)
                except base.GatewayError:
                    pass
            self.worker.drop(self.session_id)
            return
        if row is not None:
            self.row = row

    async def _on_message(self, msg: base.InboundMessage) -> None:
        message = await self.db(conv_services.message_receive, session=self.row, msg=msg)
        if message is not None:
            self._fetch_media(message)

    async def _handle_messages(self, messages: list[base.InboundMessage]) -> None:
        self.last_alive = time.monotonic()
        self.last_event_at = time.time()
        stored = await self.db(conv_services.message_receive_batch, session=self.row, msgs=messages)
        for message in stored:
            self._fetch_media(message)

    def _fetch_media(self, message: Message) -> None:
        if message.media_status == Message.MediaStatus.DOWNLOADING:
            task = asyncio.create_task(self._download(message))
            self._media_tasks.add(task)
            task.add_done_callback(self._media_tasks.discard)

    async def _download(self, message: Message) -> None:
        """Fetch a message's file after its row exists (the text shows at once)."""
        name = _media_name(message)
        dest = Path(settings.MEDIA_ROOT) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        error = ""
        for attempt in range(self.worker.config.media_retries):
            if self.child is None:
                error = "client not running"
            else:
                try:
                    result = await self.child.request(
                        base.DownloadMedia(media_ref=bytes(message.media_ref), dest=str(dest)),
                        timeout=300,
                    )
                    await self.db(
                        conv_services.message_media_stored,
                        message_id=message.pk,
                        path=name,
                        size=result.size,
                    )
                    return
                except base.GatewayError as exc:
                    error = str(exc)
                    if not exc.transient and not isinstance(exc, ChildGone):
                        break
            await asyncio.sleep(2**attempt)
        logger.warning("media download failed message=%s", message.pk)
        await self.db(conv_services.message_media_failed, message_id=message.pk, error=error)

    # --- outbox, receipts, requests --------------------------------------------------

    async def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            await self._flush_requested.wait()
            self._flush_requested.clear()
            if self._stopping.is_set():
                return
            try:
                await self._flush()
            except Exception:
                logger.exception("flush failed session=%s", self.session_id)
                await asyncio.sleep(1)

    async def _flush(self) -> None:
        row = self.row
        if row.logout_requested:
            await self._logout()
            return
        linking = self.state in (base.ConnState.WAITING_QR, base.ConnState.PAIRING)
        if row.pair_phone and not row.pair_code and self.qr_seen and linking and self.child:
            await self._request_pair_code(row.pair_phone)
        if not self.connected or self.child is None:
            return
        await self._send_outbox()
        await self._send_receipts()

    async def _logout(self) -> None:
        try:
            if self.child is None or not self.connected:
                raise base.GatewayError("not connected")
            await self.child.request(base.Logout(), timeout=30)
        except base.GatewayError:
            # Nothing to unlink on WhatsApp's side right now: record it here.
            await self.db(services.session_on_state, session_id=self.session_id, state="logged_out")
        self.worker.drop(self.session_id)

    async def _request_pair_code(self, phone: str) -> None:
        try:
            code = await self.child.request(base.RequestPairCode(phone=phone), timeout=30)
        except base.GatewayError as exc:
            await self.db(
                services.session_on_state,
                session_id=self.session_id,
                state="waiting_qr",
                detail=f"pairing code: {exc}",
            )
            return
        row = await self.db(
            services.session_on_pair_code, session_id=self.session_id, phone=phone, code=code
        )
        if row is not None:
            self.row = row

    def _command_for(self, m: Message) -> base.Command:
        to = m.conversation.contact.jid
        if m.kind == Message.Kind.TEXT:
            quoted_sender = quoted_text = ""
            if m.reply_to is not None:
                quoted_text = m.reply_to.body
                if m.reply_to.is_inbound:
                    quoted_sender = m.reply_to.sender_jid or to
                else:  # quoting ourselves: our own number
                    quoted_sender = f"{self.row.phone_number}@s.whatsapp.net"
            return base.SendText(
                to=to,
                text=m.body,
                message_id=m.wa_id,
                quoted_id=m.quoted_wa_id,
                quoted_sender=quoted_sender,
                quoted_text=quoted_text,
            )
        return base.SendMedia(
            to=to,
            kind=base.MessageKind(m.kind),
            path=m.media.path,
            message_id=m.wa_id,
            caption=m.body,
            filename=m.file_name,
            mimetype=m.mime_type,
            quoted_id=m.quoted_wa_id,
        )

    async def _send_outbox(self) -> None:
        while self.connected and self.child is not None and not self._stopping.is_set():
            batch = await self.db(conv_services.outbox_pending, session_id=self.session_id)
            sent_any = False
            for m in batch:
                claimed = await self.db(
                    conv_services.outbox_claim, message_id=m.pk, lease_token=self.token
                )
                if not claimed:
                    continue
                try:
                    result = await self.child.request(self._command_for(m), timeout=120)
                except base.GatewayError as exc:
                    await self.db(
                        conv_services.outbox_failed,
                        message_id=m.pk,
                        error=str(exc),
                        transient=exc.transient,
                    )
                    if isinstance(exc, ChildGone):
                        return
                    continue
                except Exception as exc:  # e.g. the file vanished: fail this one, go on
                    await self.db(
                        conv_services.outbox_failed,
                        message_id=m.pk,
                        error=str(exc),
                        transient=False,
                    )
                    continue
                await self.db(
                    conv_services.outbox_sent,
                    message_id=m.pk,
                    wa_id=result.message_id,
                    timestamp=result.timestamp,
                )
                sent_any = True
            if not sent_any:
                return

    async def _send_receipts(self) -> None:
        owed = await self.db(conv_services.receipts_pending, session_id=self.session_id)
        for chat, sender, ids in owed:
            try:
                await self.child.request(
                    base.MarkRead(chat=chat, sender=sender, message_ids=tuple(ids)), timeout=30
                )
            except base.GatewayError:
                return  # try again on the next flush
            await self.db(
                conv_services.receipts_sent, session_id=self.session_id, chat=chat, message_ids=ids
            )


class Worker:
    def __init__(self, config: WorkerConfig | None = None) -> None:
        self.config = config or WorkerConfig.from_settings()
        self.session_path = GATEWAYS[self.config.gateway]
        self.db = Database()
        self.runners: dict[int, NumberRunner] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._inbox = WorkerInbox()
        self._dropping: set[int] = set()
        self._last_renew = 0.0
        self.ready = asyncio.Event()
        self._done = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        logger.info("worker %s starting gateway=%s", self.config.holder, self.config.gateway)
        listener = asyncio.create_task(self._listen())
        try:
            while not self._stopping.is_set():
                try:
                    await self._tick()
                except Exception:
                    logger.exception("worker tick failed")
                self.ready.set()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.config.tick_seconds)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            listener.cancel()
            await self._release_all()
            self.db.close()
            metrics.CONNECTED_NUMBERS.set(0)
            self._done.set()
            logger.info("worker %s stopped", self.config.holder)

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def shutdown(self) -> None:
        """Stop every number cleanly and release the leases (SIGTERM, server shutdown)."""
        self.request_stop()
        await self._done.wait()

    async def _release_all(self) -> None:
        runners = list(self.runners.values())
        self.runners.clear()
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
        for r in runners:
            await self.db(services.session_released, session_id=r.session_id, token=r.token)

    def drop(self, session_id: int) -> None:
        """Stop running a number that no longer needs a client, and free its lease."""
        if session_id in self._dropping:
            return
        self._dropping.add(session_id)
        asyncio.create_task(self._drop(session_id))

    async def _drop(self, session_id: int) -> None:
        try:
            runner = self.runners.pop(session_id, None)
            if runner is None:
                return
            await runner.stop()
            await self.db(services.session_lease_release, session_id=session_id, token=runner.token)
            await self._follow(session_id, follow=False)
        finally:
            self._dropping.discard(session_id)

    # --- the loop ---------------------------------------------------------------------

    async def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_renew >= self.config.lease_seconds / 3:
            await self._renew()
            self._last_renew = now
        await self._claim()
        for runner in self.runners.values():
            runner.check_silence(now)
        metrics.CONNECTED_NUMBERS.set(sum(r.connected for r in self.runners.values()))
        busy = await self.db(conv_selectors.sessions_with_work, session_ids=list(self.runners))
        for session_id in busy:
            runner = self.runners.get(session_id)
            if runner is not None and runner.connected:
                runner.poke()

    async def _renew(self) -> None:
        held = {sid: r.token for sid, r in self.runners.items() if sid not in self._dropping}
        lost, rows = await self.db(
            services.session_lease_renew, held=held, lease_seconds=self.config.lease_seconds
        )
        for session_id in lost:
            runner = self.runners.pop(session_id, None)
            if runner is not None:
                logger.info("stopping session=%s (lease lost or not needed)", session_id)
                await runner.stop()
                await self.db(
                    services.session_lease_release, session_id=session_id, token=runner.token
                )
        for session_id, row in rows.items():
            runner = self.runners.get(session_id)
            if runner is None:
                continue
            wanted_before = (runner.row.logout_requested, runner.row.pair_phone)
            runner.row = row
            if (row.logout_requested, row.pair_phone) != wanted_before:
                runner.poke()
            if runner.last_event_at:
                await self.db(
                    services.session_touch,
                    session_id=session_id,
                    when=timezone.now()
                    - timedelta(seconds=max(0.0, time.time() - runner.last_event_at)),
                )

    async def _claim(self) -> None:
        room = self.config.max_numbers - len(self.runners)
        if room <= 0:
            return
        claimed = await self.db(
            services.session_lease_claim,
            holder=self.config.holder,
            lease_seconds=self.config.lease_seconds,
            limit=room,
            only=self.config.only_session,
        )
        for session_id, token in claimed:
            row = await self.db(WhatsAppSession.objects.filter(pk=session_id).first)
            if row is None:
                # Deleted since the claim (created and deleted at once): nothing to run,
                # and the lease went with the row.
                logger.info("session=%s deleted before it started", session_id)
                continue
            recovered = await self.db(
                conv_services.outbox_recover,
                session_id=session_id,
                resend_safe=self.config.gateway in RESEND_SAFE,
            )
            if recovered:
                logger.warning("session=%s had %d interrupted sends", session_id, recovered)
            runner = NumberRunner(self, row, token)
            self.runners[session_id] = runner
            await self._follow(session_id)
            runner.start()
            logger.info("running session=%s", session_id)

    # --- wake-ups over the channel layer ------------------------------------------------

    async def _follow(self, session_id: int, follow: bool = True) -> None:
        try:
            await self._inbox.follow(session_id, follow)
        except Exception:
            logger.warning("channel layer unavailable for session=%s", session_id)

    async def _listen(self) -> None:
        """Wake-ups only shorten the wait: the outbox is polled every tick anyway."""
        while not self._stopping.is_set():
            try:
                if not await self._inbox.open(list(self.runners)):
                    return
                while not self._stopping.is_set():
                    runner = self.runners.get(await self._inbox.receive())
                    if runner is not None:
                        runner.row = (
                            await self.db(
                                WhatsAppSession.objects.filter(pk=runner.session_id).first
                            )
                            or runner.row
                        )
                        runner.poke()
                    else:
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("worker wake-up listener error; retrying", exc_info=True)
                await asyncio.sleep(2)


@contextlib.asynccontextmanager
async def number_running(session_id: int) -> AsyncIterator[bool]:
    """For operator commands: run this one number in-process while the block runs,
    unless a live worker already holds it. Yields whether this process runs it."""
    row = await Database.once(WhatsAppSession.objects.get, pk=session_id)
    if row.lease_expires_at is not None and row.lease_expires_at > timezone.now():
        yield False
        return
    worker = Worker(WorkerConfig.from_settings(only_session=session_id, max_numbers=1))
    task = asyncio.create_task(worker.run())
    try:
        yield True
    finally:
        await worker.shutdown()
        await task


def embed_in_reactor() -> None:
    """Run the worker in daphne's event loop (the embedded mode of ``manage.py serve``)."""
    from twisted.internet import defer, reactor

    holder: dict[str, Worker] = {}

    def start() -> None:
        worker = Worker()
        holder["worker"] = worker
        asyncio.ensure_future(worker.run())

    def stop() -> defer.Deferred | None:
        worker = holder.get("worker")
        if worker is None:
            return None
        return defer.Deferred.fromFuture(asyncio.ensure_future(worker.shutdown()))

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
