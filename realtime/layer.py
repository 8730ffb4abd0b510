"""Sending to the channel layer: group names, the send itself, the workers' inbox and
the health check's round trip.

Services do not send here themselves: realtime.events builds each event and hands it
here after commit (``on_commit``: never a ghost of a rolled-back write).

Groups:
- ``wa-session-<id>``: every socket of a user who may see number <id>;
- ``conversation-<id>``: sockets that have the conversation open (``join_conversation``
  checked access first); message ticks and media updates go only there;
- ``user-<id>``: every socket of one user;
- ``wa-worker-<id>``: the worker holding number <id>; ``wa-workers``: every worker.

Live page events go over the broadcast layer (realtime.messages), where each web
process's hub (realtime.hub) receives them for its sockets; wake-ups go to the workers
over the default one. Each message to a group is numbered (``_Sequence``) so that a hub
notices one that never arrived.

Sending from a thread with no event loop (the worker's database threads) goes through
one long-lived sender thread (``_Sender``): in order, without making the caller wait,
with consecutive pushes to one group sent as one layer message, and with what the layer
refuses tried again for a while.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from realtime.hub import loop_for, running_hub
from realtime.messages import (
    Gap,
    GroupsRefresh,
    Push,
    PushBatch,
    WorkerLookup,
    WorkerWakeup,
    broadcast_layer,
)
from vbcrm import metrics

logger = logging.getLogger(__name__)

WORKERS_GROUP = "wa-workers"


def session_group(session_id: int) -> str:
    return f"wa-session-{session_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def worker_group(session_id: int) -> str:
    return f"wa-worker-{session_id}"


def group_send(
    groups: Iterable[str],
    message: Push | GroupsRefresh | WorkerWakeup,
    *,
    broadcast: bool = True,
) -> None:
    """Send ``message`` to each of ``groups``: live page events over the broadcast layer,
    anything for the workers (``broadcast=False``) over the default one."""
    layer = broadcast_layer() if broadcast else get_channel_layer()
    if layer is None:
        return
    if _in_memory(layer):
        # One process, one event loop: the layer's queues belong to it. From a thread
        # with no loop of its own (the embedded worker's database threads) async_to_sync
        # would run the send on a new loop, which does not wake the hub's: hand it over
        # thread-safely instead (in order: each send runs to completion at once, and the
        # stamp and the hand-over happen under one lock).
        loop = loop_for(layer)
        if loop is not None:
            with _sequence.lock:
                for group in groups:
                    asyncio.run_coroutine_threadsafe(
                        layer.group_send(group, _sequence.stamp(group, message)), loop
                    )
            return
        send = async_to_sync(layer.group_send)
        for group in groups:
            with _sequence.lock:
                stamped = _sequence.stamp(group, message)
            send(group, stamped)
        return
    for group in groups:
        _sender.put(layer, group, {**message, "group": group})


class _Sequence:
    """Numbers this process's messages to each group: 1, 2, 3... A hub that sees a number
    skipped knows it missed a message (the layer dropped it: Redis down, a channel over
    capacity) and has its sockets catch up. The message carries ``src`` (this process),
    ``gen`` (which counter: a group's counter that was forgotten starts again under a new
    one) and ``seq``. Counters are kept for the groups sent to most recently only."""

    MAX_GROUPS = 50_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.src = uuid.uuid4().hex[:12]
        self._counters: OrderedDict[str, list[int]] = OrderedDict()
        self._generations = 0

    def stamp(self, group: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """``message`` to ``group`` with its number (the caller holds ``lock``)."""
        counter = self._counters.get(group)
        if counter is None:
            self._generations += 1
            counter = self._counters[group] = [self._generations, 0]
            if len(self._counters) > self.MAX_GROUPS:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(group)
        counter[1] += 1
        return {**message, "group": group, "src": self.src, "gen": counter[0], "seq": counter[1]}


_sequence = _Sequence()


def _in_memory(layer: BaseChannelLayer) -> bool:
    return type(layer).__name__ == "InMemoryChannelLayer"


class _Sender:
    """Sends to a cross-process layer (Redis) from one thread with a long-lived event
    loop. async_to_sync would start a thread, an event loop and a Redis connection per
    call when the caller has no loop of its own; this keeps them, and keeps the order.

    A message the layer refuses (Redis down or restarting) is tried again, in order,
    for ``RETRY_SECONDS`` after it was put; then it is dropped, counted and logged, and
    once the layer answers again each group that lost one gets a ``gap`` notice: its
    number shows the hubs that they missed something, so their sockets catch up."""

    BATCH = 500
    RETRY_SECONDS = 10.0

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        # (layer, group) that lost messages and have not been told yet
        self._lost: dict[tuple[int, str], Any] = {}

    def put(self, layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="layer-sender", daemon=True)
                self._thread.start()
            self._pending += 1
            self._idle.clear()
        self._queue.put((layer, group, message, time.monotonic()))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything put so far has been handed to the layer (or dropped)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            try:
                # Groups that lost a message hear of it once the layer is back, even when
                # nothing else is sent to them meanwhile.
                batch = [self._queue.get(timeout=1.0 if self._lost else None)]
            except queue.Empty:
                try:
                    loop.run_until_complete(self._tell_gaps())
                except Exception:
                    logger.exception("channel layer sender failed")
                continue
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                loop.run_until_complete(self._send(batch))
            except Exception:
                logger.exception("channel layer sender failed")
            with self._lock:
                self._pending -= len(batch)
                if not self._pending:
                    self._idle.set()

    async def _send(self, batch: list[tuple]) -> None:
        deadline = batch[0][3] + self.RETRY_SECONDS
        for layer, group, message in _merge([item[:3] for item in batch]):
            with _sequence.lock:
                message = _sequence.stamp(group, message)
            if not await self._deliver(layer, group, message, deadline):
                metrics.REALTIME_EVENTS_DROPPED.inc()
                self._lost[(id(layer), group)] = layer
        if self._lost:
            await self._tell_gaps()

    async def _deliver(
        self, layer: BaseChannelLayer, group: str, message: dict[str, Any], deadline: float
    ) -> bool:
        delay = 0.05
        while True:
            try:
                await layer.group_send(group, message)
                return True
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    logger.warning(
                        "channel layer unavailable; dropped a message to %s (%s); "
                        "its sockets will catch up",
                        group,
                        type(exc).__name__,
                    )
                    return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _tell_gaps(self) -> None:
        for key, layer in list(self._lost.items()):
            group = key[1]
            with _sequence.lock:
                gap: Gap = {"type": "gap"}
                notice = _sequence.stamp(group, gap)
            try:
                await layer.group_send(group, notice)
            except Exception:
                return  # still down: the next batch tries again
            del self._lost[key]


def _merge(batch: list[tuple]) -> list[tuple]:
    """Consecutive pushes to one group become one ``push.batch`` message (order kept)."""
    out: list[tuple] = []
    for layer, group, message in batch:
        last = out[-1] if out else None
        if (
            message["type"] == "push"
            and last is not None
            and last[0] is layer
            and last[1] == group
            and last[2]["type"] in ("push", "push.batch")
        ):
            pushes = last[2]["pushes"] if last[2]["type"] == "push.batch" else [last[2]]
            merged: PushBatch = {"type": "push.batch", "group": group, "pushes": pushes}
            out[-1] = (layer, group, merged)
            pushes.append(message)
        else:
            out.append((layer, group, message))
    return out


_sender = _Sender()


def flush(timeout: float = 5.0) -> bool:
    """Wait until the messages sent so far have left this process (shutdown, tests)."""
    return _sender.flush(timeout)


def on_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` (a send) once the current transaction commits."""
    # robust: a broadcast failure (layer down) is logged and never undoes or
    # fails the write that already committed.
    transaction.on_commit(fn, robust=True)


# --- The worker's side: wake-ups in, and the health check's round trip --------------------


class WorkerInbox:
    """A worker's own channel: it follows the numbers it holds and hears their wake-ups."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None

    async def open(self, session_ids: Iterable[int]) -> bool:
        if self.layer is None:
            return False
        # Every concrete layer takes a prefix; channels' stub of the base class does not.
        self.channel = await self.layer.new_channel("wa-worker.")  # type: ignore[call-arg]
        await self.layer.group_add(WORKERS_GROUP, self.channel)
        for session_id in session_ids:
            await self.follow(session_id)
        return True

    async def follow(self, session_id: int, follow: bool = True) -> None:
        if self.layer is None or self.channel is None:
            return
        group = worker_group(session_id)
        if follow:
            await self.layer.group_add(group, self.channel)
        else:
            await self.layer.group_discard(group, self.channel)

    async def receive(self) -> dict[str, Any]:
        """Wait for the next message: a ``WorkerWakeup`` (its ``session_id`` None when any
        worker may claim) or a ``WorkerLookup``."""
        assert self.layer is not None and self.channel is not None
        return await self.layer.receive(self.channel)

    async def answer(self, reply_to: str, answer: Mapping[str, Any]) -> None:
        """Answer a request (``WorkerLookup``) on the channel its sender waits on."""
        assert self.layer is not None
        await self.layer.send(reply_to, dict(answer))


class WorkerUnavailable(Exception):
    """No worker answered for the number in time (none holds it, or the layer is down)."""


def worker_lookup(session_id: int, phones: list[str], timeout: float) -> dict[str, Any]:
    """Ask the worker holding number ``session_id`` to look ``phones`` up on WhatsApp, and
    wait for its answer (a ``LookupAnswer``). From sync code: a page, the API, a socket's
    database thread. Raises ``WorkerUnavailable`` when no answer comes in ``timeout``.

    The request goes to the number's worker group (only the worker that holds the number
    follows it); the answer comes back on a fresh plain channel that this call alone
    reads, as ``layer_round_trip`` does, so it never waits behind the socket hub's
    receive. With the in-memory layer (web and worker in one process) the whole exchange
    runs on the event loop that owns the layer's queues."""
    layer = get_channel_layer()
    if layer is None:
        raise WorkerUnavailable("no channel layer configured")

    async def ask() -> dict[str, Any]:
        reply_to = f"wa-lookup.{secrets.token_hex(8)}"
        request: WorkerLookup = {
            "type": "worker.lookup",
            "session_id": session_id,
            "phones": list(phones),
            "reply_to": reply_to,
        }
        await layer.group_send(worker_group(session_id), dict(request))
        try:
            return await asyncio.wait_for(layer.receive(reply_to), timeout)
        except TimeoutError:
            raise WorkerUnavailable(f"no worker answered for number {session_id}") from None

    loop = loop_for(layer) if _in_memory(layer) else None
    try:
        if loop is not None:
            return asyncio.run_coroutine_threadsafe(ask(), loop).result(timeout + 5)
        return async_to_sync(ask)()
    except WorkerUnavailable:
        raise
    except Exception as exc:  # the layer itself failed (Redis down)
        logger.warning("worker lookup failed session=%s (%s)", session_id, type(exc).__name__)
        raise WorkerUnavailable(str(exc)) from exc


async def layer_round_trip(timeout: float) -> None:
    """Send a message to a fresh channel and read it back (raises when the layer fails).

    The channel is not one of this process's own (``new_channel``'s names are): on
    Redis those are all read through one shared receive that the socket hub holds for
    as long as it waits, so a check on a process with sockets would wait behind it.
    A plain name is read directly, on a connection of its own."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    nonce = secrets.token_hex(8)
    channel = f"health.{nonce}"
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    message = await asyncio.wait_for(layer.receive(channel), timeout)
    if message.get("nonce") != nonce:
        raise RuntimeError("the layer returned another message")
    broadcast = broadcast_layer()
    if broadcast is None or broadcast is layer:  # None: not with a default layer
        return
    # Live events' own layer (pub/sub): this process's hub pings itself through it every
    # second; with no hub yet (no socket), the layer must at least take a message.
    hub = running_hub()
    if hub is not None and hub.layer is broadcast and hub.channel:
        if hub.cut_off:
            raise RuntimeError("live events no longer reach this process")
        return
    await asyncio.wait_for(broadcast.send(channel, {"type": "health.ping"}), timeout)
