"""The parent side of a number's pipe: inbound messages that queue up are handed over
together (group commit), a lone one alone, and ("done", seq) goes back only once they
are stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from whatsapp.gateway import base
from whatsapp.gateway.process import GatewayChild, hand_to_loop


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, item: tuple) -> None:
        self.sent.append(item)


def _msg(i: int) -> base.InboundMessage:
    jid = "5511988880001@s.whatsapp.net"
    return base.InboundMessage(
        message_id=f"M{i}",
        chat=jid,
        sender=jid,
        timestamp=datetime.now(UTC),
        kind=base.MessageKind.TEXT,
        text=str(i),
    )


def _receipt() -> base.Receipt:
    return base.Receipt(
        chat="c", sender="s", message_ids=("X",), status="read", timestamp=datetime.now(UTC)
    )


def _child(on_event, on_messages) -> tuple[GatewayChild, _Pipe]:
    config = base.SessionConfig(account="1", store="")
    child = GatewayChild(config, "unused", on_event, on_messages)
    pipe = _Pipe()
    child._conn = pipe  # the pump confirms through it
    return child, pipe


def _done(pipe: _Pipe) -> list[int]:
    return [item[1] for item in pipe.sent if item[0] == "done"]


async def _until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_queued_messages_are_one_batch_confirmed_after_they_are_stored():
    calls: list = []
    release = asyncio.Event()
    stored = asyncio.Event()

    async def on_event(event):
        calls.append(("one", getattr(event, "message_id", "receipt")))
        if isinstance(event, base.InboundMessage) and event.message_id == "M1":
            await release.wait()  # busy storing the first while the rest queue up

    async def on_messages(msgs):
        calls.append(("batch", [m.message_id for m in msgs]))
        await stored.wait()

    child, pipe = _child(on_event, on_messages)
    pump = asyncio.create_task(child._pump())
    child._events.put(("event", 1, _msg(1)))
    await _until(lambda: calls, "the first message")
    assert calls == [("one", "M1")]  # a lone message goes straight through
    for i in (2, 3, 4):
        child._events.put(("event", i, _msg(i)))
    child._events.put(("event", 5, _receipt()))
    child._events.put(("event", 6, _msg(6)))
    assert _done(pipe) == []  # the first is not stored yet
    release.set()
    await _until(lambda: len(calls) > 1, "the batch")
    assert calls[1] == ("batch", ["M2", "M3", "M4"])  # stops at the receipt: order kept
    assert _done(pipe) == [1]  # the batch is not stored yet: not confirmed
    stored.set()
    await _until(lambda: len(_done(pipe)) == 4, "the confirmations")
    assert _done(pipe) == [1, 4, 5, 6]
    assert calls[2:] == [("one", "receipt"), ("one", "M6")]
    child._events.put(("eof",))
    await pump


async def test_a_batch_that_fails_is_not_confirmed():
    release = asyncio.Event()
    busy = asyncio.Event()

    async def on_event(event):
        busy.set()
        await release.wait()

    async def on_messages(msgs):
        raise RuntimeError("database on fire")

    child, pipe = _child(on_event, on_messages)
    pump = asyncio.create_task(child._pump())
    child._events.put(("event", 1, _msg(1)))
    await asyncio.wait_for(busy.wait(), 5)
    child._events.put(("event", 2, _msg(2)))
    child._events.put(("event", 3, _msg(3)))
    release.set()
    await _until(lambda: _done(pipe), "the first confirmation")
    child._events.put(("event", 4, _receipt()))
    await _until(lambda: len(_done(pipe)) == 2, "the receipt's confirmation")
    assert _done(pipe) == [1, 4]  # 2 and 3 were never confirmed on their own
    child._events.put(("eof",))
    await pump


async def test_without_a_batch_handler_messages_go_one_by_one():
    seen: list[str] = []

    async def on_event(event):
        seen.append(event.message_id)

    child, pipe = _child(on_event, None)
    for i in (1, 2, 3):
        child._events.put(("event", i, _msg(i)))
    child._events.put(("eof",))
    await child._pump()
    assert seen == ["M1", "M2", "M3"]
    assert _done(pipe) == [1, 2, 3]


def test_a_pipe_reader_hands_nothing_to_a_closed_loop():
    """A child's pipe can end after its parent's loop has closed (shutdown): the reader
    thread stops quietly instead of dying on "Event loop is closed"."""
    loop = asyncio.new_event_loop()
    got: list[int] = []
    assert hand_to_loop(loop, got.append, 1)
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert not hand_to_loop(loop, got.append, 2)
    assert got == [1]
