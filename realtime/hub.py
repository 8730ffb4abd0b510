"""Receiving live events: one hub per web process, for all its sockets.

A socket does not join the layer's groups itself. Once its consumer checked the access
rule, it subscribes here (``subscribe``); the process's hub joins each group once, on a
channel of its own, on the live events' layer (realtime.messages.BROADCAST), and hands
every message to its local sockets in a plain loop: one layer message per process per
event, not one per socket. Pushes that carry rows are rendered here
(realtime.fragments), once per event and language the group's sockets speak.

The hub also finds what it did not receive (a skipped message number, its own receive
failing, its ping not coming back) and has the sockets concerned catch up.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import Any, Protocol, cast

from channels.layers import BaseChannelLayer

from realtime.fragments import frames_for
from realtime.messages import HubMessage, Push, broadcast_layer
from vbcrm import metrics

logger = logging.getLogger(__name__)


class Socket(Protocol):
    """What the hub needs of a subscriber (realtime.consumers.InboxConsumer). Other
    messages go to the handler named after their type, when it has one."""

    language: str

    async def forward(self, frames: list[dict[str, Any]]) -> None: ...


class _Hub:
    """This process's member of the layer's groups, for all its sockets.

    Consumers subscribe after their access check; the hub joins a group on the layer
    once, when its first local socket subscribes, leaves it with the last, and hands
    each message to the group's local sockets: ``push`` frames to the socket, anything
    else (``groups.refresh``) to the consumer's handler in a task of its own.

    One task receives, another delivers: whatever arrived while the hub was busy is
    delivered together, each socket getting its frames of that round in one socket
    message (``forward``), so a burst costs a socket one write, not one per event.

    Nothing stored may stay missing from an open page. The layer delivers at most once,
    so the hub watches for what it did not deliver: a message number skipped in a group
    (numbered by realtime.layer's ``_Sequence``), its own receive failing, or its own
    ping not coming back (Redis down: whatever was sent meanwhile is gone). Either way
    the sockets concerned get a ``resync`` frame, which the page answers with the
    catch-up it does after a reconnect.
    """

    REFRESH_SECONDS = 3600.0  # the layer forgets a group member after a day
    RESYNC_DELAY = 0.25  # gather a burst of gaps into one catch-up per socket
    PING_SECONDS = 1.0  # how often the hub checks that the layer still reaches it
    PING_TIMEOUT = 5.0  # a ping not back by then: the hub was cut off (or far behind)

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel = ""
        self.members: dict[str, set[Socket]] = {}
        self.live: set[str] = set()
        # group -> sender -> (counter generation, last number seen)
        self.seen: dict[str, dict[str, tuple[int, int]]] = {}
        self._backlog: list[HubMessage] = []
        self._arrived = asyncio.Event()
        self._resync_due: set[Socket] = set()
        self._resync_task: asyncio.Task | None = None
        self._pinged = 0  # the last ping sent ...
        self._ponged = 0  # ... and the last one back
        self._pinged_at: dict[int, float] = {}
        self.cut_off = False
        self._heard: set[int] = set()  # pub/sub connections whose reconnects we hear of
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    async def subscribe(self, consumer: Socket, group: str) -> None:
        if group in self.live:
            self.members[group].add(consumer)
            return
        async with self._lock:
            if not self.channel:
                self.channel = await self.layer.new_channel()
                self._tasks = [
                    asyncio.create_task(self._listen(), name="socket-hub"),
                    asyncio.create_task(self._deliver(), name="socket-hub-deliver"),
                    asyncio.create_task(self._watch(), name="socket-hub-watch"),
                    asyncio.create_task(self._refresh(), name="socket-hub-refresh"),
                ]
            if group not in self.live:
                await self.layer.group_add(group, self.channel)
                self.live.add(group)
                self.members.setdefault(group, set())
                self._hear_reconnects()
            self.members[group].add(consumer)

    def _hear_reconnects(self) -> None:
        """Redis pub/sub reconnects by itself (and subscribes again), dropping whatever was
        published meanwhile: hear of each reconnection, so the sockets catch up once this
        hub's ping comes back. channels-redis offers no hook for it; its connection to
        each Redis shard is a redis-py pub/sub whose connection takes connect callbacks.
        On another layer (or another version) this finds nothing, and the ping alone
        notices outages."""
        try:
            layer: Any = self.layer  # channels-redis' internals, looked up as they come
            shards = layer._get_layer()._shards
        except AttributeError:
            return
        for shard in shards:
            connection = getattr(getattr(shard, "_pubsub", None), "connection", None)
            if connection is not None and id(connection) not in self._heard:
                connection.register_connect_callback(self._reconnected)
                self._heard.add(id(connection))

    def _reconnected(self, connection: object) -> None:
        self._cut("its Redis connection was re-established")

    async def unsubscribe(self, consumer: Socket, group: str) -> None:
        self._resync_due.discard(consumer)
        members = self.members.get(group)
        if not members or consumer not in members:
            return
        members.discard(consumer)
        if members:
            return
        async with self._lock:
            if self.members.get(group) or group not in self.live:
                return  # someone subscribed meanwhile
            del self.members[group]
            self.live.discard(group)
            self.seen.pop(group, None)
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                logger.warning("channel layer unavailable leaving %s", group)

    # --- receiving and delivering ----------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("socket hub: channel layer receive failed; rejoining")
                await self._recover()
                continue
            self._backlog.append(cast(HubMessage, message))  # what our senders send
            self._arrived.set()

    async def _deliver(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._backlog = self._backlog, []
            out: dict[Socket, list[dict[str, str]]] = {}
            cache: dict = {}
            for message in batch:
                try:
                    missed = self._missed(message)
                    if missed is not None:
                        self._resync(self.members.get(missed, ()))
                    self._dispatch(message, out, cache)
                except Exception:
                    logger.exception("socket hub: could not handle a %s", message.get("type"))
            for consumer, frames in out.items():
                try:
                    await consumer.forward(frames)
                except Exception:
                    logger.exception("socket hub: a socket refused a frame")

    def _dispatch(
        self, message: HubMessage, out: dict[Socket, list[dict[str, str]]], cache: dict
    ) -> None:
        """Queue ``message``'s frames in ``out`` for the group's sockets (rendered once per
        language they read), or start the consumers' handler for anything else."""
        if message["type"] == "hub.ping":
            self._pong(message["n"])
            return
        members = list(self.members.get(message.get("group", ""), ()))
        pushes: list[Push]
        if message["type"] == "push":
            pushes = [message]
        elif message["type"] == "push.batch":
            pushes = message["pushes"]
        elif message["type"] == "gap":
            return  # its number told _missed what it had to
        else:
            handler = str(message["type"]).replace(".", "_")
            for consumer in members:
                if hasattr(consumer, handler):
                    asyncio.create_task(getattr(consumer, handler)(message))
            return
        if not members:
            return
        langs = {consumer.language for consumer in members}
        for push in pushes:
            try:
                frames = frames_for(push, langs, cache)
            except Exception:
                logger.exception("socket hub: could not render a %s event", push.get("event"))
                continue
            for consumer in members:
                out.setdefault(consumer, []).append(frames)

    # --- finding what was lost -----------------------------------------------------------

    def _missed(self, message: HubMessage) -> str | None:
        """The message's group if messages to it were lost before this one; else None."""
        if message["type"] == "hub.ping":
            return None  # not numbered
        src = message.get("src")
        group = message.get("group")
        if src is None or group is None or group not in self.live:
            return None
        seen = self.seen.setdefault(group, {})
        last = seen.get(src)
        seen[src] = (message["gen"], message["seq"])
        if last is None:
            return None  # the first from this sender since we joined: the page synced
        expected = last[1] + 1 if last[0] == message["gen"] else 1
        if message["seq"] == expected:
            return None
        metrics.REALTIME_GAPS.inc()
        logger.warning(
            "socket hub: %d message(s) to %s never arrived; its sockets catch up",
            max(message["seq"] - expected, 1),
            group,
        )
        return group

    async def _watch(self) -> None:
        """Ping this hub's own channel through the layer. A layer that stops answering
        (Redis down) may not make the receive fail (pub/sub reconnects by itself and
        drops what was sent meanwhile); a ping that fails or does not come back does."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.PING_SECONDS)
            self._pinged += 1
            self._pinged_at[self._pinged] = loop.time()
            try:
                await self.layer.send(self.channel, {"type": "hub.ping", "n": self._pinged})
            except Exception as exc:
                self._cut(f"ping failed: {type(exc).__name__}")
                continue
            oldest = self._pinged_at.get(self._ponged + 1)
            if oldest is not None and loop.time() - oldest > self.PING_TIMEOUT:
                self._cut("ping not back")

    def _cut(self, why: str) -> None:
        if not self.cut_off:
            logger.warning("socket hub: channel layer lost (%s); sockets will catch up", why)
            self.cut_off = True

    def _pong(self, n: int) -> None:
        for k in [k for k in self._pinged_at if k <= n]:
            del self._pinged_at[k]
        self._ponged = max(self._ponged, n)
        if self.cut_off and n == self._pinged:
            # The layer reaches us again: rejoin (a restarted Redis forgot our groups) and
            # have every socket catch up on what went by meanwhile.
            self.cut_off = False
            asyncio.create_task(self._recover(), name="socket-hub-recover")

    async def _recover(self) -> None:
        """Rejoin every group until the layer answers, then have every socket catch up:
        what was sent while the layer was down never reaches this process."""
        delay = 0.5
        while not await self._rejoin():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.seen.clear()
        metrics.REALTIME_GAPS.inc()
        self._resync({c for members in self.members.values() for c in members})

    def _resync(self, consumers: Iterable[Socket]) -> None:
        self._resync_due.update(consumers)
        if self._resync_due and (self._resync_task is None or self._resync_task.done()):
            self._resync_task = asyncio.create_task(self._send_resyncs(), name="socket-resync")

    async def _send_resyncs(self) -> None:
        await asyncio.sleep(self.RESYNC_DELAY)
        due, self._resync_due = self._resync_due, set()
        for consumer in due:
            resync = getattr(consumer, "resync", None)
            if resync is None:
                continue
            try:
                await resync()
            except Exception:
                logger.exception("socket hub: a socket refused a resync")
        metrics.SOCKET_RESYNCS.inc(len(due))

    async def _rejoin(self) -> bool:
        for group in list(self.live):
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                logger.warning("channel layer unavailable rejoining %s", group)
                return False
        return True

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.REFRESH_SECONDS)
            await self._rejoin()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


# One hub per event loop (tests run one loop each; daphne has one) and channel layer.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()


def _hub() -> _Hub:
    loop = asyncio.get_running_loop()
    layer = broadcast_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        if hub is not None:
            hub.close()
        hub = _hubs[loop] = _Hub(layer)
    return hub


def running_hub() -> _Hub | None:
    """This event loop's hub, if a socket made one."""
    return _hubs.get(asyncio.get_running_loop())


def loop_for(layer: BaseChannelLayer) -> asyncio.AbstractEventLoop | None:
    """The running loop of this layer's hub, unless we are on it already."""
    try:
        asyncio.get_running_loop()
        return None  # called from async code: async_to_sync would refuse anyway
    except RuntimeError:
        pass
    for loop, hub in list(_hubs.items()):
        if hub.layer is layer and loop.is_running() and not loop.is_closed():
            return loop
    return None


async def subscribe(consumer: Socket, group: str) -> None:
    """Deliver ``group``'s events to ``consumer`` (a socket of this process) from now on.

    The caller has checked that the consumer's user may see the group's events."""
    await _hub().subscribe(consumer, group)


async def unsubscribe(consumer: Socket, group: str) -> None:
    await _hub().unsubscribe(consumer, group)
