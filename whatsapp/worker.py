"""The WhatsApp worker: claims numbers, keeps their leases, and runs one
:class:`~whatsapp.runner.NumberRunner` each (a supervised child process whose events
become database writes, and the outbox sends).

It runs embedded in the web process (``manage.py serve``, one event loop with
daphne) or standalone (``manage.py whatsapp_worker``). Async code here never
touches the ORM: every unit of work is one sync service call run on the
worker's database thread(s).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from django.utils import timezone

from conversations import selectors as conv_selectors
from conversations import services as conv_services
from conversations.push_delivery import PushSender
from conversations.webhook_delivery import WebhookSender
from realtime.layer import WorkerInbox
from vbcrm import metrics
from whatsapp import selectors, services
from whatsapp.config import WorkerConfig
from whatsapp.dbthreads import Database
from whatsapp.gateway import base
from whatsapp.gateway.process import GATEWAYS
from whatsapp.gateway.shards import ShardPool
from whatsapp.models import WhatsAppSession
from whatsapp.runner import NumberRunner

logger = logging.getLogger(__name__)

# Which gateways accept our own message id, so a resend after a crash is dropped by
# the network as a duplicate instead of reaching the customer twice.
RESEND_SAFE = {"simulator"}
# How often a worker fails the replies that waited too long for their number.
EXPIRY_EVERY_SECONDS = 60.0


class Worker:
    def __init__(self, config: WorkerConfig | None = None) -> None:
        self.config = config or WorkerConfig.from_settings()
        self.session_path = GATEWAYS[self.config.gateway]
        # Several numbers per child process, when configured (whatsapp/gateway/shards.py).
        self.shards = (
            ShardPool(self.session_path, self.config.numbers_per_process)
            if self.config.numbers_per_process > 1
            else None
        )
        self.db = Database()
        self.runners: dict[int, NumberRunner] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._inbox = WorkerInbox()
        self._dropping: set[int] = set()
        self._lookups: set[asyncio.Task] = set()
        self._last_renew = 0.0
        self._last_expiry = 0.0
        self.ready = asyncio.Event()
        self._done = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        logger.info("worker %s starting gateway=%s", self.config.holder, self.config.gateway)
        listener = asyncio.create_task(self._listen())
        # Webhooks go out beside the numbers, never in their way: a slow receiver holds
        # only its own deliveries (the sender's tasks), never a number's events.
        webhooks = asyncio.create_task(WebhookSender(self.db).run(self._stopping))
        pushes = asyncio.create_task(PushSender(self.db).run(self._stopping))
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
            self._stopping.set()
            await asyncio.gather(webhooks, pushes, return_exceptions=True)
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
            await self.db(services.session_worker_stopped, session_id=r.session_id, token=r.token)

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
        if now - self._last_expiry >= EXPIRY_EVERY_SECONDS:
            await self.db(conv_services.outbox_expire)
            await self.db(conv_services.presence_expire)
            await self.db(conv_services.conversations_auto_close, session_ids=list(self.runners))
            self._last_expiry = now
        for runner in self.runners.values():
            runner.check_silence(now)
        metrics.CONNECTED_NUMBERS.set(sum(r.connected for r in self.runners.values()))
        busy = await self.db(conv_selectors.sessions_with_work, session_ids=list(self.runners))
        for session_id in busy:
            owner = self.runners.get(session_id)
            if owner is not None and owner.connected:
                owner.poke()

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
            running = self.runners.get(session_id)
            if running is not None:
                # Our own lease ran out before its renewal came round (a loop held up by
                # a busy machine) and this claim took it back: keep the running client
                # under the new token; a second runner would start a second child.
                logger.warning("session=%s lease lapsed and was claimed again", session_id)
                running.token = token
                continue
            row = await self.db(selectors.session_get_by_id, session_id=session_id)
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
            runner = NumberRunner(
                config=self.config,
                db=self.db,
                session_path=self.session_path,
                row=row,
                token=token,
                drop=self.drop,
                shards=self.shards,
            )
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
                    message = await self._inbox.receive()
                    if message.get("type") == "worker.lookup":
                        self._start_lookup(message)
                        continue
                    session_id = message.get("session_id")
                    runner = self.runners.get(session_id) if session_id is not None else None
                    if runner is not None:
                        row = await self.db(
                            selectors.session_get_by_id, session_id=runner.session_id
                        )
                        runner.row = row or runner.row
                        runner.poke()
                    else:
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("worker wake-up listener error; retrying", exc_info=True)
                await asyncio.sleep(2)

    def _start_lookup(self, request: dict) -> None:
        task = asyncio.create_task(self._lookup(request))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _lookup(self, request: dict) -> None:
        """Answer a web process's "which of these phones are on WhatsApp" for a number
        this worker holds (realtime.layer.worker_lookup)."""
        runner = self.runners.get(int(request.get("session_id") or 0))
        answer: dict = {"type": "worker.lookup.answer"}
        if runner is None or not runner.connected:
            answer["error"] = "not_connected"
        else:
            try:
                checks = await runner.check_phones([str(p) for p in request.get("phones", [])])
                answer["results"] = [dataclasses.asdict(c) for c in checks]
            except base.GatewayError as exc:
                logger.warning("phone lookup failed session=%s: %s", runner.session_id, exc)
                answer["error"] = "not_connected" if exc.transient else "failed"
        try:
            await self._inbox.answer(str(request.get("reply_to", "")), answer)
        except Exception:
            logger.warning("could not answer a phone lookup", exc_info=True)


@contextlib.asynccontextmanager
async def number_running(session_id: int) -> AsyncIterator[bool]:
    """For operator commands: run this one number in-process while the block runs,
    unless a live worker already holds it. Yields whether this process runs it."""
    row = await Database.once(selectors.session_get_by_id, session_id=session_id)
    if row is None:
        raise WhatsAppSession.DoesNotExist(f"no number with id {session_id}")
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
    # Imported when called: importing the reactor installs one, and only daphne's (already
    # installed by `manage.py serve`) may be; the standalone worker never calls this.
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
    # Twisted declares the interface's methods without ``self``: its checker is one off.
    reactor.addSystemEventTrigger("before", "shutdown", stop)  # type: ignore[arg-type]
