"""Nothing stored stays missing from an open page: the hub notices live events that never
arrived (a skipped number, its own layer connection lost) and tells the sockets concerned
to catch up; the sender retries what the layer refuses and counts what it drops. And the
health check's layer round trip does not wait behind the hub."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from realtime import hub
from realtime import layer as sending
from vbcrm import metrics
from vbcrm.api import check_channel_layer

pytestmark = pytest.mark.timeout(60)


class Socket:
    def __init__(self, language: str = "en") -> None:
        self.language = language
        self.frames: list[str] = []
        self.resyncs = 0
        self.got = asyncio.Event()

    async def forward(self, frames: list[dict[str, str]]) -> None:
        self.frames += [f[self.language] for f in frames]
        self.got.set()

    async def resync(self) -> None:
        self.resyncs += 1
        self.got.set()


def push(text: str) -> dict:
    return {"type": "push", "frames": {"en": text}}


def counter(metric) -> float:
    return metric._value.get()


async def until(predicate, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def send_from_a_thread(groups: list[str], message: dict) -> None:
    """As the worker's database threads do (no event loop of their own)."""
    thread = threading.Thread(target=sending.group_send, args=(groups, message))
    thread.start()
    thread.join()


@pytest.fixture
def memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


def redis_layer(settings, url: str, broadcast: str = "pubsub") -> None:
    """Both layers on the test's Redis, as settings makes them; ``broadcast="core"`` puts
    live events on the default kind of layer instead (the hub works with either)."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    default = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30}], "prefix": prefix},
    }
    pubsub = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": url}], "prefix": prefix},
    }
    settings.CHANNEL_LAYERS = {
        "default": default,
        "broadcast": pubsub if broadcast == "pubsub" else default,
    }


# --- the hub --------------------------------------------------------------------------------


async def test_a_skipped_number_makes_the_group_s_sockets_catch_up(memory_layer):
    ours, other = Socket(), Socket()
    await hub.subscribe(ours, "wa-session-1")
    await hub.subscribe(other, "wa-session-2")
    gaps = counter(metrics.REALTIME_GAPS)
    send_from_a_thread(["wa-session-1", "wa-session-2"], push("1"))
    send_from_a_thread(["wa-session-1", "wa-session-2"], push("2"))
    await until(lambda: len(ours.frames) == 2 and len(other.frames) == 2, what="two frames")
    await asyncio.sleep(hub._Hub.RESYNC_DELAY * 2)
    assert (ours.resyncs, other.resyncs) == (0, 0)  # in order: nothing to catch up

    # A message to wa-session-1 is numbered but never arrives (the layer dropped it).
    with sending._sequence.lock:
        sending._sequence.stamp("wa-session-1", push("lost"))
    send_from_a_thread(["wa-session-1", "wa-session-2"], push("3"))
    await until(lambda: ours.resyncs == 1, what="the resync")
    assert ours.frames == ["1", "2", "3"]  # what did arrive is still delivered
    assert other.resyncs == 0  # the other group lost nothing
    assert counter(metrics.REALTIME_GAPS) == gaps + 1


async def test_a_burst_of_gaps_is_one_catch_up_per_socket(memory_layer):
    s = Socket()
    await hub.subscribe(s, "wa-session-3")
    await hub.subscribe(s, "user-3")
    send_from_a_thread(["wa-session-3", "user-3"], push("0"))
    for n in range(5):
        with sending._sequence.lock:
            sending._sequence.stamp("wa-session-3", push("lost"))
            sending._sequence.stamp("user-3", push("lost"))
        send_from_a_thread(["wa-session-3", "user-3"], push(str(n)))
    await until(lambda: s.resyncs >= 1, what="the resync")
    await asyncio.sleep(hub._Hub.RESYNC_DELAY * 2)
    assert s.resyncs == 1


async def test_a_forgotten_counter_starts_again_without_a_false_alarm(memory_layer, monkeypatch):
    """The sender keeps counters for its most recent groups only; a group that comes
    back starts under a new generation at 1, which is no gap."""
    monkeypatch.setattr(sending, "_sequence", sending._Sequence())
    monkeypatch.setattr(sending._Sequence, "MAX_GROUPS", 2)
    s = Socket()
    await hub.subscribe(s, "conversation-1")
    send_from_a_thread(["conversation-1"], push("a"))
    send_from_a_thread(["conversation-2", "conversation-3"], push("x"))  # evicts conversation-1
    send_from_a_thread(["conversation-1"], push("b"))
    await until(lambda: len(s.frames) == 2, what="both frames")
    await asyncio.sleep(hub._Hub.RESYNC_DELAY * 2)
    assert s.resyncs == 0


@pytest.mark.django_db(transaction=True)
async def test_the_socket_gets_a_resync_frame(memory_layer, alice, number):
    """The consumer turns the hub's resync into a frame the page answers."""
    from tests.realtime.test_consumer import connect, frame_of

    communicator = await connect(alice)
    assert communicator.connected
    group = sending.session_group(number.pk)
    ok = push('{"type": "ok"}')
    send_from_a_thread([group], ok)
    with sending._sequence.lock:
        sending._sequence.stamp(group, ok)
    send_from_a_thread([group], ok)
    assert (await frame_of(communicator, "resync")) == {"type": "resync"}
    await communicator.disconnect()


# --- the sender -----------------------------------------------------------------------------


class FlakyLayer:
    """Refuses every send while ``down``; records what it took."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        if self.down:
            raise ConnectionError("Redis is down")
        self.sent.append((group, message))


def test_the_sender_retries_what_the_layer_refuses_and_keeps_the_order():
    layer = FlakyLayer()
    sender = sending._Sender()
    layer.down = True
    for n in range(3):
        sender.put(layer, "g", {**push(str(n)), "group": "g"})
    time.sleep(0.3)
    assert layer.sent == []
    layer.down = False
    assert sender.flush(10)
    texts = []
    for _group, message in layer.sent:
        pushes = message["pushes"] if message["type"] == "push.batch" else [message]
        texts += [p["frames"]["en"] for p in pushes]
    assert texts == ["0", "1", "2"]


def test_what_the_sender_drops_is_counted_and_its_groups_hear_of_the_gap(monkeypatch):
    monkeypatch.setattr(sending._Sender, "RETRY_SECONDS", 0.2)
    layer = FlakyLayer()
    sender = sending._Sender()
    dropped = counter(metrics.REALTIME_EVENTS_DROPPED)
    sender.put(layer, "g", {**push("before"), "group": "g"})
    assert sender.flush(5)
    layer.down = True
    sender.put(layer, "g", {**push("lost"), "group": "g"})
    assert sender.flush(5)
    assert counter(metrics.REALTIME_EVENTS_DROPPED) == dropped + 1
    # Nothing else is sent to "g"; once the layer answers it gets a gap notice anyway,
    # numbered past the lost message, so a hub sees the skip.
    layer.down = False
    deadline = time.monotonic() + 5
    while len(layer.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (_, first), (_, notice) = layer.sent
    assert notice["type"] == "gap" and notice["group"] == "g"
    assert notice["src"] == first["src"] and notice["gen"] == first["gen"]
    assert notice["seq"] > first["seq"] + 1  # the lost one (and failed notices) skipped


# --- on a real Redis that stops and starts ----------------------------------------------------


@pytest.mark.parametrize("broadcast", ["pubsub", "core"])
async def test_a_redis_outage_makes_every_socket_catch_up(settings, private_redis, broadcast):
    redis_layer(settings, private_redis.url, broadcast)
    sockets = [Socket(), Socket()]
    await hub.subscribe(sockets[0], "wa-session-5")
    await hub.subscribe(sockets[1], "conversation-5")
    await sync_to_async(send_from_a_thread)(["wa-session-5", "conversation-5"], push("before"))
    await until(lambda: all(s.frames == ["before"] for s in sockets), what="the first frames")

    private_redis.kill()
    # Stored while Redis is down: the live events cannot go anywhere.
    await sync_to_async(send_from_a_thread)(["wa-session-5"], push("during"))
    await asyncio.sleep(1)
    private_redis.start()

    await until(lambda: all(s.resyncs >= 1 for s in sockets), 20, "every socket to catch up")
    # and live events flow again, to the groups the hub joined anew on the empty Redis
    await sync_to_async(send_from_a_thread)(["wa-session-5", "conversation-5"], push("after"))
    await until(lambda: all(s.frames[-1] == "after" for s in sockets), 15, "frames after")
    assert await sync_to_async(sending.flush)(15)


async def test_health_answers_fast_with_no_socket_idle_sockets_and_busy_ones(
    settings, private_redis
):
    """The hub's blocking receive must not hold the health check's round trip."""
    redis_layer(settings, private_redis.url)

    async def health_ms() -> float:
        start = time.monotonic()
        await sync_to_async(check_channel_layer)()
        return (time.monotonic() - start) * 1000

    assert await health_ms() < 1000  # no socket yet
    s = Socket()
    await hub.subscribe(s, "wa-session-6")
    await asyncio.sleep(0.3)  # the hub now waits in its receive
    assert await health_ms() < 1000  # idle sockets
    await asyncio.sleep(6)  # past one full blocking read of the layer (5 s)
    assert await health_ms() < 1000

    stop = threading.Event()

    def busy() -> None:
        n = 0
        while not stop.is_set():
            sending.group_send(["wa-session-6"], push(str(n)))
            n += 1
            time.sleep(0.002)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        await until(lambda: len(s.frames) > 20, what="a stream of frames")
        for _ in range(3):
            assert await health_ms() < 1000  # busy
    finally:
        stop.set()
        await sync_to_async(thread.join)()
    assert await sync_to_async(sending.flush)(15)


async def test_a_pub_sub_reconnect_between_pings_makes_every_socket_catch_up(
    settings, private_redis, monkeypatch
):
    """Redis restarts between two pings: no ping fails, yet what was published while the
    hub's pub/sub connection was down is gone. Its reconnection alone must make the
    sockets catch up."""
    monkeypatch.setattr(hub._Hub, "PING_SECONDS", 4.0)
    redis_layer(settings, private_redis.url, "pubsub")
    s = Socket()
    await hub.subscribe(s, "wa-session-7")
    await asyncio.sleep(4.5)  # right after a ping
    private_redis.kill()
    private_redis.start()
    await until(lambda: s.resyncs >= 1, 20, "the socket to catch up")
