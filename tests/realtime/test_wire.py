"""realtime.wire: live frames framed once and written straight to daphne's sockets, in
order behind whatever Twisted still holds for a socket; and realtime.warm's start-up."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daphne.server import Server

from realtime import consumers, wire
from realtime.consumers import InboxConsumer
from realtime.fragments import languages
from realtime.warm import warm_up

ROOT = Path(__file__).resolve().parents[2]


def _unframe(data: bytes) -> tuple[int, str]:
    """(first byte, text) of one unmasked WebSocket frame, as a browser reads it."""
    size = data[1] & 0x7F
    offset = 2
    if size == 126:
        (size,) = struct.unpack("!H", data[2:4])
        offset = 4
    elif size == 127:
        (size,) = struct.unpack("!Q", data[2:10])
        offset = 10
    assert data[1] & 0x80 == 0, "a server's frames are not masked"
    payload = data[offset : offset + size]
    assert len(payload) == size == len(data) - offset
    return data[0], payload.decode()


@pytest.mark.parametrize("length", [0, 125, 126, 2200, 65535, 65536, 70000])
def test_a_text_becomes_one_final_text_frame_of_its_length(length: int):
    text = "é" * (length // 2) + "x" * (length % 2)
    first, payload = _unframe(wire.framed(text))
    assert first == 0x81  # FIN, text
    assert payload == text


def test_a_text_is_framed_once_for_every_socket():
    text = '{"type": "new_message", "body": "once"}'
    assert wire.framed(text) is wire.framed(text)


class FakeTransport:
    """Twisted's TCP transport, as much as realtime.wire looks at."""

    TLS = False
    connected = True
    disconnecting = False
    _writeDisconnected = False

    def __init__(self, sock: Any) -> None:
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.written.append(data)
        self._tempDataLen += len(data)


class FakeProtocol:
    STATE_OPEN = 3
    state = 3
    _perMessageCompress = None
    maxMessagePayloadSize = 0

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.send_queue: list = []


@pytest.fixture
def pair():
    ours, browser = socket.socketpair()
    ours.setblocking(False)
    browser.settimeout(2)
    yield ours, browser
    ours.close()
    browser.close()


def test_a_frame_goes_straight_into_the_socket_when_nothing_waits(pair):
    ours, browser = pair
    transport = FakeTransport(ours)
    assert wire.Wire(FakeProtocol(transport)).send_text("hello")
    assert _unframe(browser.recv(100)) == (0x81, "hello")
    assert transport.written == []


def test_a_frame_queues_behind_what_twisted_still_holds(pair):
    ours, browser = pair
    transport = FakeTransport(ours)
    transport.write(b"earlier bytes")
    link = wire.Wire(FakeProtocol(transport))
    assert link.send_text("later")
    assert transport.written == [b"earlier bytes", wire.framed("later")]
    ours.send(b"x")
    assert browser.recv(100) == b"x"  # nothing of ours overtook the held bytes


def test_what_the_socket_does_not_take_now_is_left_to_twisted():
    class Full:
        def send(self, data: bytes) -> int:
            return 10

    transport = FakeTransport(Full())
    assert wire.Wire(FakeProtocol(transport)).send_text("a longer text than ten bytes")
    frame = wire.framed("a longer text than ten bytes")
    assert transport.written == [frame[10:]]


def test_a_connection_twisted_cannot_hand_over_plainly_goes_through_its_write(pair):
    ours, _browser = pair
    transport = FakeTransport(ours)
    transport.TLS = True
    assert wire.Wire(FakeProtocol(transport)).send_text("secret")
    assert transport.written == [wire.framed("secret")]


@pytest.mark.parametrize(
    "change",
    [
        {"state": 2},  # closing
        {"_perMessageCompress": object()},  # compression: autobahn compresses each message
        {"send_queue": [(b"x", True)]},  # autobahn's own queue is not empty
        {"maxMessagePayloadSize": 8},
    ],
)
def test_anything_else_is_left_to_the_ordinary_send(pair, change: dict):
    ours, _browser = pair
    transport = FakeTransport(ours)
    protocol = FakeProtocol(transport)
    for name, value in change.items():
        setattr(protocol, name, value)
    assert not wire.Wire(protocol).send_text("not this way")
    assert transport.written == []


async def test_a_wire_is_in_the_scope_only_when_daphne_serves(pair):
    seen: list[Any] = []

    async def app(scope, receive, send) -> None:
        seen.append(wire.wire_of(scope))

    wrapped = wire.with_wire(app)
    server = Server.__new__(Server)  # only its handle_reply's owner matters here
    protocol = FakeProtocol(FakeTransport(pair[0]))
    await wrapped({"type": "websocket"}, None, functools.partial(server.handle_reply, protocol))

    async def another_servers_send(message) -> None:
        pass

    await wrapped({"type": "websocket"}, None, another_servers_send)
    assert isinstance(seen[0], wire.Wire) and seen[0].protocol is protocol
    assert seen[1] is None


class RecordingWire:
    def __init__(self, takes: bool) -> None:
        self.takes = takes
        self.texts: list[str] = []

    def send_text(self, text: str) -> bool:
        self.texts.append(text)
        return self.takes


@pytest.mark.parametrize("takes", [True, False])
async def test_the_consumer_writes_live_frames_on_its_wire_else_sends_them(takes: bool):
    consumer = InboxConsumer()
    consumer._early = None
    recorder = RecordingWire(takes)
    consumer.wire = recorder  # type: ignore[assignment]
    sent: list[str | None] = []

    async def send(text_data: str | None = None, **kwargs: Any) -> None:
        sent.append(text_data)

    consumer.send = send  # type: ignore[method-assign,assignment]
    await consumer.resync()
    assert recorder.texts == ['{"type": "resync"}']
    assert sent == ([] if takes else ['{"type": "resync"}'])


@pytest.mark.parametrize("direct", [True, False])
def test_the_setting_turns_the_consumer_s_wire_off(pair, settings, direct: bool):
    settings.VBCRM_SOCKET_DIRECT_WRITES = direct
    link = wire.Wire(FakeProtocol(FakeTransport(pair[0])))
    assert consumers._wire({wire.SCOPE_KEY: link}) is (link if direct else None)
    assert consumers._wire({}) is None  # another server: no wire either way


def test_warm_up_renders_a_sample_event_in_every_language_without_the_database(caplog):
    # No django_db mark: a query would raise, and warm_up would log it.
    caplog.set_level(logging.ERROR)
    try:
        seconds = warm_up()
    finally:
        gc.unfreeze()
    assert seconds > 0
    assert not caplog.records
    assert len(languages()) >= 2


def test_under_daphne_direct_writes_and_sends_reach_the_browser_in_order(tmp_path):
    """Real daphne, autobahn and Twisted (tests/realtime/wire_order_app.py): frames written
    straight and frames sent through ASGI, from two tasks, some filling the socket's
    buffers, the first right after the accept; the browser gets them in the order written."""
    port = _free_port()
    log = (tmp_path / "daphne.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
        + ["tests.realtime.wire_order_app:application"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        numbers, done = asyncio.run(_read_all(f"ws://127.0.0.1:{port}/"))
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    assert numbers == list(range(done["done"])), (tmp_path / "daphne.log").read_text()[-2000:]
    # both of the wire's ways were taken, beside the ordinary send
    assert done["straight"] > 0 and done["behind"] > 0 and done["send"] > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _read_all(url: str) -> tuple[list[int], dict[str, int]]:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                ws = await session.ws_connect(url, max_msg_size=0)
                break
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        numbers: list[int] = []
        async with ws:
            await asyncio.sleep(0.3)  # a slow reader: the server's buffers fill meanwhile
            while True:
                frame = json.loads(await ws.receive_str(timeout=20))
                if "done" in frame:
                    return numbers, frame
                numbers.append(frame["n"])
