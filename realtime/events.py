"""The one place that talks to the channel layer.

Services call these functions inside their transaction; each event is sent after
commit (never a ghost of a rolled-back write). Consumers only forward frames that
are encoded ONCE per event and UI language, never once per socket (a fragment carries
translated labels, so each socket forwards the one its page speaks):

- message and conversation events (``new_message``, ``message_status``,
  ``conversation_updated``) carry the rows their fragments are made of
  (realtime.snapshots). Each web process's hub renders them when they arrive, once,
  in the languages its sockets speak. The writer (often the worker, under load)
  renders nothing, and no process renders a language nobody reads;
- the small ones (``session_status``, ``messages_read``) are encoded for every
  language by the writer.

Groups:
- ``wa-session-<id>``: every socket of a user who may see number <id>;
- ``conversation-<id>``: sockets that have the conversation open (``join_conversation``
  checked access first); message ticks and media updates go only there;
- ``user-<id>``: every socket of one user;
- ``wa-worker-<id>``: the worker holding number <id>; ``wa-workers``: every worker.

Fan-out is local to each web process: sockets do not join the layer's groups
themselves. A socket subscribes here (``subscribe``), after the consumer checked the
access rule; the process's hub joins each group once, on a channel of its own, and
hands every message to its local sockets in a plain loop. One layer message per
process per event, not one per socket.

Sending from a thread with no event loop (the worker's database threads) goes through
one long-lived sender thread: in order, without making the caller wait, and with
consecutive pushes to one group sent as one layer message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from realtime import snapshots
from realtime.snapshots import Snapshot
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


def encode_frame(event_type: str, data: dict[str, Any], html: str = "") -> str:
    return json.dumps({"type": event_type, **data, "html": html}, cls=DjangoJSONEncoder)


def languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


# The layer alias of live page events (pub/sub on Redis); workers' wake-ups and the
# health check's round trip use the default one.
BROADCAST = "broadcast"


def broadcast_layer():
    alias = BROADCAST if BROADCAST in settings.CHANNEL_LAYERS else DEFAULT_CHANNEL_LAYER
    return get_channel_layer(alias)


def _group_send(groups: Iterable[str], message: dict[str, Any], *, broadcast: bool = True) -> None:
    layer = broadcast_layer() if broadcast else get_channel_layer()
    if layer is None:
        return
    if _in_memory(layer):
        # One process, one event loop: the layer's queues belong to it. From a thread
        # with no loop of its own (the embedded worker's database threads) async_to_sync
        # would run the send on a new loop, which does not wake the hub's: hand it over
        # thread-safely instead (in order: each send runs to completion at once, and the
        # stamp and the hand-over happen under one lock).
        loop = _hub_loop(layer)
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

    def stamp(self, group: str, message: dict[str, Any]) -> dict[str, Any]:
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


def _hub_loop(layer) -> asyncio.AbstractEventLoop | None:
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


def _in_memory(layer) -> bool:
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

    def put(self, layer, group: str, message: dict[str, Any]) -> None:
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

    async def _deliver(self, layer, group: str, message: dict[str, Any], deadline: float) -> bool:
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
                notice = _sequence.stamp(group, {"type": "gap"})
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
            out[-1] = (layer, group, {"type": "push.batch", "group": group, "pushes": pushes})
            pushes.append(message)
        else:
            out.append((layer, group, message))
    return out


_sender = _Sender()


def flush(timeout: float = 5.0) -> bool:
    """Wait until the messages sent so far have left this process (shutdown, tests)."""
    return _sender.flush(timeout)


# --- Receiving: one hub per web process ---------------------------------------------------


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
    (see ``_Sequence``), its own receive failing, or its own ping not coming back (Redis
    down: whatever was sent meanwhile is gone). Either way the sockets concerned get a
    ``resync`` frame, which the page answers with the catch-up it does after a reconnect.
    """

    REFRESH_SECONDS = 3600.0  # the layer forgets a group member after a day
    RESYNC_DELAY = 0.25  # gather a burst of gaps into one catch-up per socket
    PING_SECONDS = 1.0  # how often the hub checks that the layer still reaches it
    PING_TIMEOUT = 5.0  # a ping not back by then: the hub was cut off (or far behind)

    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel = ""
        self.members: dict[str, set] = {}
        self.live: set[str] = set()
        # group -> sender -> (counter generation, last number seen)
        self.seen: dict[str, dict[str, tuple[int, int]]] = {}
        self._backlog: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._resync_due: set = set()
        self._resync_task: asyncio.Task | None = None
        self._pinged = 0  # the last ping sent ...
        self._ponged = 0  # ... and the last one back
        self._pinged_at: dict[int, float] = {}
        self.cut_off = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    async def subscribe(self, consumer, group: str) -> None:
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
            self.members[group].add(consumer)

    async def unsubscribe(self, consumer, group: str) -> None:
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
            self._backlog.append(message)
            self._arrived.set()

    async def _deliver(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._backlog = self._backlog, []
            out: dict[Any, list[dict[str, str]]] = {}
            cache: dict = {}
            for message in batch:
                try:
                    if self._missed(message):
                        self._resync(self.members.get(message["group"], ()))
                    self._dispatch(message, out, cache)
                except Exception:
                    logger.exception("socket hub: could not handle a %s", message.get("type"))
            for consumer, frames in out.items():
                try:
                    await consumer.forward(frames)
                except Exception:
                    logger.exception("socket hub: a socket refused a frame")

    def _dispatch(self, message: dict[str, Any], out: dict, cache: dict) -> None:
        """Queue ``message``'s frames in ``out`` for the group's sockets (rendered once per
        language they read), or start the consumers' handler for anything else."""
        kind = message.get("type")
        if kind == "hub.ping":
            self._pong(message["n"])
            return
        members = list(self.members.get(message.get("group", ""), ()))
        if kind == "push":
            pushes = [message]
        elif kind == "push.batch":
            pushes = message["pushes"]
        elif kind == "gap":
            return  # its number told _missed what it had to
        else:
            handler = str(kind).replace(".", "_")
            for consumer in members:
                if hasattr(consumer, handler):
                    asyncio.create_task(getattr(consumer, handler)(message))
            return
        if not members:
            return
        langs = {consumer.language for consumer in members}
        for push in pushes:
            try:
                frames = _frames(push, langs, cache)
            except Exception:
                logger.exception("socket hub: could not render a %s event", push.get("event"))
                continue
            for consumer in members:
                out.setdefault(consumer, []).append(frames)

    # --- finding what was lost -----------------------------------------------------------

    def _missed(self, message: dict[str, Any]) -> bool:
        """Whether messages to this group were lost before this one."""
        src = message.get("src")
        group = message.get("group")
        if src is None or group not in self.live:
            return False
        seen = self.seen.setdefault(group, {})
        last = seen.get(src)
        seen[src] = (message["gen"], message["seq"])
        if last is None:
            return False  # the first from this sender since we joined: the page synced
        expected = last[1] + 1 if last[0] == message["gen"] else 1
        if message["seq"] == expected:
            return False
        metrics.REALTIME_GAPS.inc()
        logger.warning(
            "socket hub: %d message(s) to %s never arrived; its sockets catch up",
            max(message["seq"] - expected, 1),
            group,
        )
        return True

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

    def _resync(self, consumers: Iterable) -> None:
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
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hub() -> _Hub:
    loop = asyncio.get_running_loop()
    layer = broadcast_layer()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        if hub is not None:
            hub.close()
        hub = _hubs[loop] = _Hub(layer)
    return hub


async def subscribe(consumer, group: str) -> None:
    """Deliver ``group``'s events to ``consumer`` (a socket of this process) from now on.

    The caller has checked that the consumer's user may see the group's events."""
    await _hub().subscribe(consumer, group)


async def unsubscribe(consumer, group: str) -> None:
    await _hub().unsubscribe(consumer, group)


Built = tuple[dict[str, Any], str]


# Key of the frames one user alone may read, beside the per-language frames of a push.
OWNER_FRAMES = "owner"


def _push(
    groups: Iterable[str],
    event_type: str,
    build: Callable[[], Built],
    owner: tuple[int, Callable[[], Built]] | None = None,
) -> None:
    """Encode a small event once per UI language now and send it to ``groups``.

    ``build`` returns ``(data, html)``; it runs under each language in turn. With
    ``owner`` (a user id and a build of its own), that user's sockets get the frames of
    the owner's build and every other socket those of ``build``
    (``frames[OWNER_FRAMES]``, picked by the consumer's ``forward``).
    """

    def encode(build: Callable[[], Built]) -> dict[str, Any]:
        frames: dict[str, Any] = {}
        for lang in languages():
            with translation.override(lang):
                data, html = build()
                frames[lang] = encode_frame(event_type, data, html)
        return frames

    frames = encode(build)
    if owner is not None:
        frames[OWNER_FRAMES] = {"user_id": owner[0], "frames": encode(owner[1])}
    _group_send(groups, {"type": "push", "event": event_type, "frames": frames})


def _push_rows(groups: Iterable[str], event_type: str, rows: dict[str, Any]) -> None:
    """Send the rows an event's fragments are made of; each web process renders them
    (``_frames``), once, in the languages its sockets speak."""
    _group_send(groups, {"type": "push", "event": event_type, "rows": rows})


def _after_commit(fn) -> None:
    # robust: a broadcast failure (layer down) is logged and never undoes or
    # fails the write that already committed.
    transaction.on_commit(fn, robust=True)


# --- Conversations and messages: rows out ------------------------------------------------

# What the fragments show of a user (user_label) and of a number: never more (no
# password hash, no lease or QR travels through the layer).
_USER_FIELDS = ("id", "username", "first_name", "last_name")
_SESSION_FIELDS = ("id", "name")
_QUOTED_FIELDS = ("id", "kind", "body")


def _user_rows(user) -> Snapshot | None:
    return snapshots.dump(user, _USER_FIELDS) if user is not None else None


def _conversation_rows(conversation, sessions: dict[int, Snapshot] | None = None) -> str:
    """A conversation and what its list row shows, as one JSON string: the messages of
    a batch share it, and a process renders the row once per string and language.
    ``sessions`` keeps the number's row across the conversations of one batch."""
    sessions = {} if sessions is None else sessions
    if conversation.session_id not in sessions:
        sessions[conversation.session_id] = snapshots.dump(conversation.session, _SESSION_FIELDS)
    return json.dumps(
        {
            "conversation": snapshots.dump(conversation),
            "contact": snapshots.dump(conversation.contact),
            "session": sessions[conversation.session_id],
            "assigned_to": _user_rows(conversation.assigned_to),
        }
    )


def _message_rows(message) -> dict[str, Any]:
    return {
        "message": snapshots.dump(message),
        "reply_to": snapshots.dump(message.reply_to, _QUOTED_FIELDS)
        if message.reply_to_id
        else None,
        "sent_by": _user_rows(message.sent_by) if message.sent_by_id else None,
        # who an inbound message is from, when WhatsApp gave no name with it
        "contact_name": message.conversation.contact.display_name
        if message.is_inbound and not message.sender_name
        else "",
    }


def message_created(message) -> None:
    messages_created([message])


def messages_created(messages: Iterable) -> None:
    """New messages (several when the worker stored a batch together): one
    ``new_message`` event each, in order, carrying its conversation as the batch left it."""
    messages = list(messages)

    def send() -> None:
        conversations: dict[int, str] = {}
        sessions: dict[int, Snapshot] = {}
        for message in messages:
            conversation = message.conversation
            if conversation.pk not in conversations:
                conversations[conversation.pk] = _conversation_rows(conversation, sessions)
            rows = {**_message_rows(message), "conversation": conversations[conversation.pk]}
            _push_rows([session_group(conversation.session_id)], "new_message", rows)

    _after_commit(send)


def message_updated(message) -> None:
    def send() -> None:
        rows = _message_rows(message)
        _push_rows([conversation_group(message.conversation_id)], "message_status", rows)

    _after_commit(send)


def conversation_updated(conversation) -> None:
    def send() -> None:
        rows = {"conversation": _conversation_rows(conversation)}
        _push_rows([session_group(conversation.session_id)], "conversation_updated", rows)

    _after_commit(send)


# --- ... and frames in: rendered by the web process that holds the sockets ---------------


def _load_message(rows: dict[str, Any]):
    from django.contrib.auth import get_user_model

    from conversations.models import Message

    message = snapshots.load(Message, rows["message"])
    if rows["reply_to"] is not None:
        message.reply_to = snapshots.load(Message, rows["reply_to"])
    if rows["sent_by"] is not None:
        message.sent_by = snapshots.load(get_user_model(), rows["sent_by"])
    return message


def _load_conversation(text: str, cache: dict):
    key = ("conversation", text)
    if key not in cache:
        from django.contrib.auth import get_user_model

        from conversations.models import Contact, Conversation
        from whatsapp.models import WhatsAppSession

        rows = json.loads(text)
        conversation = snapshots.load(Conversation, rows["conversation"])
        conversation.contact = snapshots.load(Contact, rows["contact"])
        conversation.session = snapshots.load(WhatsAppSession, rows["session"])
        if rows["assigned_to"] is not None:
            conversation.assigned_to = snapshots.load(get_user_model(), rows["assigned_to"])
        cache[key] = conversation
    return cache[key]


def _row(text: str, cache: dict) -> tuple[dict[str, Any], str]:
    """A conversation's JSON and list row in the current language, once per ``cache``."""
    from conversations.serializers import conversation_data

    key = ("row", text, translation.get_language())
    if key not in cache:
        conversation = _load_conversation(text, cache)
        cache[key] = (
            conversation_data(conversation),
            render_to_string("conversations/_conversation_row.html", {"c": conversation}),
        )
    return cache[key]


def _message_html(message, rows: dict[str, Any]) -> str:
    context = {"m": message, "contact_name": rows["contact_name"]}
    return render_to_string("conversations/_message.html", context)


def _frames(push: dict[str, Any], langs: Iterable[str], cache: dict) -> dict[str, str]:
    """A push's frames in ``langs``: pre-encoded, or rendered now from its rows.
    ``cache`` lives for one batch of pushes (rows its messages share are read once)."""
    if "frames" in push:
        return push["frames"]
    from conversations.serializers import message_data

    event, rows = push["event"], push["rows"]
    if event == "conversation_updated":
        text = rows["conversation"]

        def build() -> str:
            data, html = _row(text, cache)
            return encode_frame(event, {"conversation": data}, html)

    else:
        message = _load_message(rows)
        if event == "new_message":
            text = rows["conversation"]
            message.conversation = _load_conversation(text, cache)

            def build() -> str:
                data, row_html = _row(text, cache)
                # The list row too, so a page moves the row to the top without asking.
                payload = {"message": message_data(message), "conversation": data}
                payload["row_html"] = row_html
                return encode_frame(event, payload, _message_html(message, rows))

        else:  # message_status

            def build() -> str:
                html = _message_html(message, rows)
                return encode_frame(event, {"message": message_data(message)}, html)

    frames = {}
    for lang in langs:
        with translation.override(lang):
            frames[lang] = build()
    return frames


def messages_read(conversation, user) -> None:
    def send() -> None:
        _push(
            [session_group(conversation.session_id)],
            "messages_read",
            lambda: ({"conversation_id": conversation.pk, "by": user.pk}, ""),
        )

    _after_commit(send)


# --- Numbers -----------------------------------------------------------------------


def session_data(session, *, secrets: bool = False) -> dict[str, Any]:
    """A number's state for its pages. The QR and pairing codes are its owner's alone:
    they are in only with ``secrets`` (empty otherwise)."""
    from whatsapp.qr import qr_svg

    return {
        "id": session.pk,
        "name": session.name,
        "status": session.status,
        "status_label": str(session.get_status_display()),
        "status_detail": session.status_detail,
        "phone_number": session.phone_number,
        "qr_svg": qr_svg(session.qr_code) if secrets and session.qr_code else "",
        "pair_code": session.pair_code if secrets else "",
        "connected_at": session.connected_at.isoformat() if session.connected_at else None,
        "last_event_at": session.last_event_at.isoformat() if session.last_event_at else None,
        "lease_holder": session.lease_holder,
    }


def session_changed(session) -> None:
    """Everyone who may see the number hears of it; only the owner's sockets get the
    frames with its QR or pairing code."""

    def send() -> None:
        _push(
            [session_group(session.pk), user_group(session.owner_id)],
            "session_status",
            lambda: ({"session": session_data(session)}, ""),
            owner=(
                session.owner_id,
                lambda: ({"session": session_data(session, secrets=True)}, ""),
            ),
        )

    _after_commit(send)


def session_deleted(session_id: int, user_ids: Iterable[int]) -> None:
    user_ids = list(user_ids)

    def send() -> None:
        data = {"session": {"id": session_id, "status": "deleted"}}
        _push([user_group(u) for u in user_ids], "session_status", lambda: (data, ""))
        wakeup = {"type": "worker.wakeup", "session_id": session_id}
        _group_send([worker_group(session_id)], wakeup, broadcast=False)

    _after_commit(send)


def access_changed(user_ids: Iterable[int]) -> None:
    """These users gained or lost numbers: their open sockets re-read which
    ``wa-session-*`` groups they belong to."""
    user_ids = list(user_ids)

    def send() -> None:
        _group_send([user_group(u) for u in user_ids], {"type": "groups.refresh"})

    _after_commit(send)


def worker_wakeup(session_id: int) -> None:
    """Tell the worker holding ``session_id`` to look at its outbox and state now.

    Only a nudge: the outbox is in the database and workers also poll it, so a
    lost wake-up delays a send by at most one poll interval, never loses it.
    """

    def send() -> None:
        message = {"type": "worker.wakeup", "session_id": session_id}
        _group_send([worker_group(session_id), WORKERS_GROUP], message, broadcast=False)

    _after_commit(send)


# --- The worker's side: wake-ups in, and the health check's round trip ----------------------


class WorkerInbox:
    """A worker's own channel: it follows the numbers it holds and hears their wake-ups."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None

    async def open(self, session_ids: Iterable[int]) -> bool:
        if self.layer is None:
            return False
        self.channel = await self.layer.new_channel("wa-worker.")
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

    async def receive(self) -> int | None:
        """Wait for the next wake-up; the number it is about (None: any worker may claim)."""
        assert self.layer is not None and self.channel is not None
        message = await self.layer.receive(self.channel)
        return message.get("session_id")


async def layer_round_trip(timeout: float) -> None:
    """Send a message to a fresh channel and read it back (raises when the layer fails).

    The channel is not one of this process's own (``new_channel``'s names are): on
    Redis those are all read through one shared receive that the socket hub holds for
    as long as it waits, so a check on a process with sockets would wait behind it.
    A plain name is read directly, on a connection of its own."""
    import secrets

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
    if broadcast is layer:
        return
    # Live events' own layer (pub/sub): this process's hub pings itself through it every
    # second; with no hub yet (no socket), the layer must at least take a message.
    hub = _hubs.get(asyncio.get_running_loop())
    if hub is not None and hub.layer is broadcast and hub.channel:
        if hub.cut_off:
            raise RuntimeError("live events no longer reach this process")
        return
    await asyncio.wait_for(broadcast.send(channel, {"type": "health.ping"}), timeout)
