"""realtime.hub's local fan-out: one layer member per process and group, frames handed
to the process's sockets; and realtime.layer's sender that batches pushes in order."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from realtime import hub
from realtime import layer as sending

pytestmark = pytest.mark.timeout(30)


class FakeSocket:
    def __init__(self, language: str = "en") -> None:
        self.language = language
        self.frames: list[str] = []
        self.writes = 0  # socket messages: frames that arrive together share one
        self.refreshed = 0

    async def forward(self, frames: list[dict[str, str]]) -> None:
        self.writes += 1
        self.frames += [f[self.language] for f in frames]

    async def groups_refresh(self, message: dict) -> None:
        self.refreshed += 1


@pytest.fixture
def layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import get_channel_layer

    return get_channel_layer()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_one_layer_member_per_group_however_many_sockets(layer: InMemoryChannelLayer):
    sockets = [FakeSocket("en"), FakeSocket("pt-br"), FakeSocket("en")]
    for s in sockets:
        await hub.subscribe(s, "wa-session-1")
    assert len(layer.groups["wa-session-1"]) == 1
    frames = {"en": "hello", "pt-br": "olá"}
    await layer.group_send(
        "wa-session-1", {"type": "push", "group": "wa-session-1", "frames": frames}
    )
    await _settle()
    assert [s.frames for s in sockets] == [["hello"], ["olá"], ["hello"]]


async def test_a_socket_that_left_gets_nothing_and_the_last_one_leaves_the_group(layer):
    a, b = FakeSocket(), FakeSocket()
    await hub.subscribe(a, "conversation-7")
    await hub.subscribe(b, "conversation-7")
    await hub.unsubscribe(a, "conversation-7")
    message = {"type": "push", "group": "conversation-7", "frames": {"en": "tick"}}
    await layer.group_send("conversation-7", message)
    await _settle()
    assert (a.frames, b.frames) == ([], ["tick"])
    await hub.unsubscribe(b, "conversation-7")
    assert not layer.groups.get("conversation-7")
    # and only subscribers of a group get its frames
    c = FakeSocket()
    await hub.subscribe(c, "wa-session-2")
    await layer.group_send("conversation-7", message)
    await _settle()
    assert c.frames == []


async def test_batches_keep_order_and_other_messages_reach_the_handler(layer):
    s = FakeSocket()
    await hub.subscribe(s, "user-3")
    pushes = [{"type": "push", "frames": {"en": n}} for n in ("1", "2", "3")]
    await layer.group_send("user-3", {"type": "push.batch", "group": "user-3", "pushes": pushes})
    await layer.group_send("user-3", {"type": "groups.refresh", "group": "user-3"})
    await _settle()
    assert s.frames == ["1", "2", "3"]
    assert s.refreshed == 1


def test_consecutive_pushes_to_a_group_are_merged_in_order():
    layer = object()

    def push(group: str, n: int) -> tuple:
        return (layer, group, {"type": "push", "group": group, "frames": {"en": str(n)}})

    wake = (layer, "wa-worker-1", {"type": "worker.wakeup", "group": "wa-worker-1"})
    merged = sending._merge([push("g", 1), push("g", 2), push("h", 3), wake, push("g", 4)])
    assert [m[1] for m in merged] == ["g", "h", "wa-worker-1", "g"]
    assert merged[0][2]["type"] == "push.batch" and merged[0][2]["group"] == "g"
    assert [p["frames"] for p in merged[0][2]["pushes"]] == [{"en": "1"}, {"en": "2"}]
    assert merged[1][2]["type"] == "push" and merged[3][2]["frames"] == {"en": "4"}


def test_the_sender_hands_everything_over_in_order_without_blocking_the_caller():
    sent: list[tuple] = []

    class SlowLayer:
        async def group_send(self, group, message):
            await asyncio.sleep(0.01)
            sent.append((group, message))

    layer = SlowLayer()
    sender = sending._Sender()
    for n in range(5):
        sender.put(layer, "g", {"type": "push", "group": "g", "frames": {"en": str(n)}})
    sender.put(layer, "w", {"type": "worker.wakeup", "group": "w"})
    assert sender.flush(5)
    frames = []
    for _group, message in sent:
        if message["type"] == "push.batch":
            frames += [p["frames"]["en"] for p in message["pushes"]]
        elif message["type"] == "push":
            frames.append(message["frames"]["en"])
    assert frames == ["0", "1", "2", "3", "4"]
    assert sent[-1][0] == "w"


async def test_an_event_from_a_thread_without_a_loop_wakes_the_hub_at_once(layer):
    """The embedded worker's database threads have no event loop: the frame must still
    reach the sockets now, not whenever the web process's loop next wakes up."""
    import threading
    import time

    got = asyncio.Event()

    class Socket(FakeSocket):
        async def forward(self, frames):
            got.set()

    await hub.subscribe(Socket(), "wa-session-9")
    thread = threading.Thread(
        target=sending.group_send,
        args=(["wa-session-9"], {"type": "push", "frames": {"en": "x"}}),
    )
    start = time.monotonic()
    thread.start()
    await asyncio.wait_for(got.wait(), 5)
    thread.join()
    assert time.monotonic() - start < 1


async def test_events_that_arrive_together_go_to_a_socket_in_one_message(layer):
    """A hub that fell behind catches up in one write per socket, not one per event."""

    class SlowSocket(FakeSocket):
        gate = asyncio.Event()

        async def forward(self, frames):
            await self.gate.wait()  # the hub is busy with this socket meanwhile
            await super().forward(frames)

    s = SlowSocket()
    await hub.subscribe(s, "wa-session-4")

    async def send(n: str) -> None:
        message = {"type": "push", "group": "wa-session-4", "frames": {"en": n}}
        await layer.group_send("wa-session-4", message)

    await send("1")
    await _settle()  # the hub is now held up delivering "1"
    for n in ("2", "3", "4"):
        await send(n)
    s.gate.set()
    await _settle()
    assert s.frames == ["1", "2", "3", "4"]
    assert s.writes == 2  # "1", then the three that came meanwhile together
