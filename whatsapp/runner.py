"""One number's runner: supervises its gateway child process while the worker holds
its lease, and turns the child's events into database writes and the outbox into sends.

Async code here never touches the ORM: every unit of work is one sync service call run
on the worker's database threads.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError

from conversations import services as conv_services
from conversations import vcard
from conversations.models import Message
from vbcrm import metrics
from whatsapp import services, voice
from whatsapp.config import WorkerConfig, store_for
from whatsapp.dbthreads import Database
from whatsapp.gateway import base
from whatsapp.gateway.process import ChildGone, GatewayChild
from whatsapp.gateway.shards import ShardPool
from whatsapp.media_names import received_media_name
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

# How long a phone lookup keeps trying a client that refuses for a moment.
LOOKUP_RETRY_SECONDS = 5.0


def command_for(m: Message, own_phone: str) -> base.SendCommand:
    """The send command for an outgoing message. ``m`` comes with its conversation's
    contact and the message it quotes; ``own_phone`` is the number's phone (a quote of
    our own message names it as the sender)."""
    to = m.conversation.contact.jid
    if m.kind == Message.Kind.TEXT:
        quoted_sender = quoted_text = ""
        if m.reply_to is not None:
            quoted_text = m.reply_to.body
            if m.reply_to.is_inbound:
                quoted_sender = m.reply_to.sender_jid or to
            else:  # quoting ourselves: our own number
                quoted_sender = f"{own_phone}@s.whatsapp.net"
        return base.SendText(
            to=to,
            text=m.body,
            message_id=m.wa_id,
            quoted_id=m.quoted_wa_id,
            quoted_sender=quoted_sender,
            quoted_text=quoted_text,
        )
    if m.kind == Message.Kind.LOCATION:
        return base.SendLocation(
            to=to,
            message_id=m.wa_id,
            latitude=m.latitude if m.latitude is not None else 0.0,
            longitude=m.longitude if m.longitude is not None else 0.0,
            name=m.location_name,
            address=m.body,
            quoted_id=m.quoted_wa_id,
        )
    if m.kind == Message.Kind.CONTACT:
        return base.SendContact(
            to=to,
            message_id=m.wa_id,
            display_name=vcard.parse(m.body).name,
            vcard=m.body,
            quoted_id=m.quoted_wa_id,
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


class NumberRunner:
    """Runs and supervises one number's child process while the worker holds its lease."""

    def __init__(
        self,
        *,
        config: WorkerConfig,
        db: Database,
        session_path: str,
        row: WhatsAppSession,
        token: uuid.UUID,
        drop: Callable[[int], None],
        shards: ShardPool | None = None,
    ) -> None:
        """``session_path`` names the gateway's session class (run in the child);
        ``token`` is the lease the worker holds the number by; ``drop`` asks the worker
        to stop running the number and free its lease; ``shards``, when given, hosts the
        number in a child shared with other numbers instead of one of its own."""
        self.config = config
        self.db = db
        self.session_path = session_path
        self._drop = drop
        self._shards = shards
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
        # Set with _restart when someone asked to link again: a fresh try, not a failure.
        self._relink = False
        self._link_request = row.link_requested_at
        self._flush_requested = asyncio.Event()
        self._auto_sent: collections.deque[float] = collections.deque()
        self._auto_rate: tuple[int, float] | None = None  # (per minute, read until)
        self._task: asyncio.Task | None = None
        self._flusher: asyncio.Task | None = None
        self._media_tasks: set[asyncio.Task] = set()
        # Groups whose info is being read; changed again meanwhile; tried since connecting.
        self._group_reads: set[str] = set()
        self._group_again: set[str] = set()
        self._groups_tried: set[str] = set()

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
        for task in list(self._media_tasks):  # media downloads and group reads
            task.cancel()

    # --- supervision ----------------------------------------------------------------

    def _config(self) -> base.SessionConfig:
        store = store_for(self.session_id)
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
            self._link_request = self.row.link_requested_at
            child = self._new_child()
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
            if self._relink:
                self._relink = False
                logger.info("linking again at once session=%s", self.session_id)
                await child.stop(timeout=5)
                self.child = None
                backoff = 1.0
                continue
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
            backoff = min(backoff * 2, self.config.restart_backoff_max)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    def _new_child(self) -> GatewayChild:
        """The number's client process: one of its own, or a place in a shared one."""
        if self._shards is not None:
            return self._shards.member(self._config(), self._on_event, self._on_messages)
        return GatewayChild(self._config(), self.session_path, self._on_event, self._on_messages)

    def check_silence(self, now: float) -> None:
        """Watchdog: a child that stopped reporting (stuck in the library) is restarted."""
        if self.child is None or self._restart.is_set():
            return
        if now - self.last_alive > self.config.silence_seconds:
            self._restart.set()

    # --- events from the child ---------------------------------------------------------

    async def _on_event(self, event: base.Event) -> None:
        """Handle one event; returning means it is stored (the child may ack it)."""
        await self._retrying(self.handle, event)

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

    async def handle(self, event: base.Event) -> None:
        """Act on one event from the child: store it, update the number, or note it is
        alive."""
        self.last_alive = time.monotonic()
        if isinstance(event, base.Alive):
            if not event.connected and self.connected:
                # Reported connected, but the library says the socket is gone and no
                # Disconnected event came: don't reset the silence clock.
                self.last_alive -= self.config.tick_seconds
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
                await self._read_new_groups()
            case base.GroupChanged():
                self._read_group(event.jid, changed=True)

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
            self._groups_tried.clear()
            await self._read_new_groups()
        if state in (base.ConnState.LOGGED_OUT, base.ConnState.PAIRING_EXPIRED):
            # Nothing to run until someone links the number again.
            self._drop(self.session_id)

    async def _on_paired(self, event: base.Paired) -> None:
        try:
            row = await self.db(
                services.session_on_paired,
                session_id=self.session_id,
                jid=event.jid,
                phone=event.phone,
                push_name=event.push_name,
                gateway=self.config.gateway,
            )
        except ValidationError:
            logger.warning("unlinking a phone linked twice session=%s", self.session_id)
            if self.child is not None:
                try:
                    await self.child.request(base.Logout(), timeout=30)
                except base.GatewayError:
                    pass
            self._drop(self.session_id)
            return
        if row is not None:
            self.row = row

    async def _on_message(self, msg: base.InboundMessage) -> None:
        message = await self.db(conv_services.message_receive, session=self.row, msg=msg)
        if message is not None:
            self._after_stored(message)

    async def _handle_messages(self, messages: list[base.InboundMessage]) -> None:
        self.last_alive = time.monotonic()
        self.last_event_at = time.time()
        stored = await self.db(conv_services.message_receive_batch, session=self.row, msgs=messages)
        for message in stored:
            self._after_stored(message)

    def _after_stored(self, message: Message) -> None:
        """A new message is stored: fetch its file, and its group's info if never read."""
        contact = message.conversation.contact
        if contact.is_group and contact.group_info_at is None:
            self._read_group(contact.jid)
        if message.media_status == Message.MediaStatus.DOWNLOADING:
            self._background(self._download(message))

    def _background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._media_tasks.add(task)
        task.add_done_callback(self._media_tasks.discard)

    # --- groups: their info, read in the background ---------------------------------

    async def _read_new_groups(self) -> None:
        jids = await self.db(conv_services.groups_without_info, session_id=self.session_id)
        for jid in jids:
            self._read_group(jid)

    def _read_group(self, jid: str, *, changed: bool = False) -> None:
        """Read a group's info, once per connection unless WhatsApp says it changed.

        A read that has not found the group stored yet (its change event came before
        its first message) does not count: the message asks again.
        """
        tried = jid in self._groups_tried
        if jid in self._group_reads:
            if changed or not tried:
                self._group_again.add(jid)
            return
        if tried and not changed:
            return
        self._group_reads.add(jid)
        self._background(self._group_info(jid))

    async def _group_info(self, jid: str) -> None:
        try:
            known = await self.db(conv_services.group_known, session_id=self.session_id, jid=jid)
            if known is not None:
                self._groups_tried.add(jid)
                contact_id, picture_id = known
                name = f"groups/{self.session_id}/{contact_id}-{secrets.token_hex(6)}.jpg"
                command = base.GetGroupInfo(
                    jid=jid,
                    picture_dest=str(Path(settings.MEDIA_ROOT) / name),
                    known_picture_id=picture_id,
                )
                info = await self._running_child().request(command, timeout=90)
                await self.db(
                    conv_services.group_info_store,
                    session=self.row,
                    info=info,
                    picture_name=name if info.picture_path else "",
                )
        except base.GatewayError as exc:
            logger.info("group info not read session=%s: %s", self.session_id, exc)
        except Exception:  # the database: the next change or connect tries again
            logger.exception("group info not stored session=%s", self.session_id)
        finally:
            self._group_reads.discard(jid)
        if jid in self._group_again:
            self._group_again.discard(jid)
            self._read_group(jid, changed=True)

    async def _download(self, message: Message) -> None:
        """Fetch a message's file after its row exists (the text shows at once)."""
        name = received_media_name(message)
        dest = Path(settings.MEDIA_ROOT) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        ref = message.media_ref
        assert ref is not None  # DOWNLOADING: the message came with a media_ref
        error = ""
        for attempt in range(self.config.media_retries):
            if self.child is None:
                error = "client not running"
            else:
                try:
                    result = await self.child.request(
                        base.DownloadMedia(media_ref=bytes(ref), dest=str(dest)),
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

    async def check_phones(self, phones: list[str]) -> tuple[base.PhoneCheck, ...]:
        """Which of ``phones`` are on WhatsApp (a lookup a web process asked for)."""
        # A client that has just connected may refuse for a moment (its session is not
        # ready yet): a transient refusal is tried again for a few seconds.
        deadline = time.monotonic() + LOOKUP_RETRY_SECONDS
        while True:
            if self.child is None or not self.connected:
                raise base.GatewayError("not connected", transient=True)
            try:
                return await self.child.request(base.CheckPhones(phones=tuple(phones)), timeout=20)
            except base.GatewayError as exc:
                if not exc.transient or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.25)

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
        if self._link_again(row, linking):
            return
        if row.pair_phone and not row.pair_code and self.qr_seen and linking and self.child:
            await self._request_pair_code(row.pair_phone)
        if not self.connected or self.child is None:
            return
        await self._send_outbox()
        await self._send_receipts()

    def _link_again(self, row: WhatsAppSession, linking: bool) -> bool:
        """Someone pressed Link (or Retry) again while the client, unlinked, could not reach
        WhatsApp: start a fresh client now rather than at the end of its connect back-off."""
        asked_again = row.link_requested_at is not None and row.link_requested_at != (
            self._link_request
        )
        showing_codes = linking or self.qr_seen
        if not asked_again or row.jid or showing_codes or self.connected or self.child is None:
            return False
        self._link_request = row.link_requested_at
        self._relink = True
        self._restart.set()
        return True

    async def _logout(self) -> None:
        try:
            if self.child is None or not self.connected:
                raise base.GatewayError("not connected")
            await self.child.request(base.Logout(), timeout=30)
        except base.GatewayError:
            # Nothing to unlink on WhatsApp's side right now: record it here.
            await self.db(services.session_on_state, session_id=self.session_id, state="logged_out")
        self._drop(self.session_id)

    def _running_child(self) -> GatewayChild:
        """The number's child process; ChildGone when there is none right now."""
        if self.child is None:
            raise ChildGone()
        return self.child

    async def _request_pair_code(self, phone: str) -> None:
        try:
            child = self._running_child()
            code = await child.request(base.RequestPairCode(phone=phone), timeout=30)
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

    async def _send_outbox(self) -> None:
        while self.connected and self.child is not None and not self._stopping.is_set():
            batch = await self.db(conv_services.outbox_pending, session_id=self.session_id)
            sent_any = False
            for m in batch:
                if m.automatic and not await self._automatic_may_go():
                    continue  # paced: it waits in the outbox for the next flush
                claimed = await self.db(
                    conv_services.outbox_claim, message_id=m.pk, lease_token=self.token
                )
                if not claimed:
                    continue
                try:
                    command = command_for(m, self.row.phone_number)
                    if isinstance(command, base.SendMedia):
                        command = await voice.prepared(command)
                    result = await self.child.request(command, timeout=120)
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

    async def _automatic_may_go(self) -> bool:
        """At most the number's ``auto_rate_per_minute`` automatic messages a minute, so
        a burst of customers does not look like spam to WhatsApp (agents' replies are
        never held back by it)."""
        now = time.monotonic()
        if self._auto_rate is None or self._auto_rate[1] < now:
            rate = await self.db(services.number_auto_rate, session_id=self.session_id)
            self._auto_rate = (rate, now + 30)
        while self._auto_sent and self._auto_sent[0] <= now - 60:
            self._auto_sent.popleft()
        if len(self._auto_sent) >= self._auto_rate[0]:
            return False
        self._auto_sent.append(now)
        return True

    async def _send_receipts(self) -> None:
        owed = await self.db(conv_services.receipts_pending, session_id=self.session_id)
        for chat, sender, ids in owed:
            try:
                await self._running_child().request(
                    base.MarkRead(chat=chat, sender=sender, message_ids=tuple(ids)), timeout=30
                )
            except base.GatewayError:
                return  # try again on the next flush
            await self.db(
                conv_services.receipts_sent, session_id=self.session_id, chat=chat, message_ids=ids
            )
