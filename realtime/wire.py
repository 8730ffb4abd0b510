"""Live frames written straight to daphne's sockets, framed once for all of them.

Through Channels, each socket's ``send()`` is an ASGI message that passes the session
middleware, daphne's reply handler and autobahn, which frames the text again for every
socket and hands it to Twisted, which waits for the event loop's next turn to write it
(registering and unregistering the socket with the poller each time). With 1,000 sockets
on one event, that was most of a web process's time.

Here a WebSocket frame is built once per text (``framed``) and written to each socket's
connection: straight into its socket when nothing is waiting in Twisted's buffer for it
(one ``send`` call), else behind what is waiting (Twisted's ``write``), so a socket's
frames never overtake each other. Anything this cannot do plainly (a socket not open, a
compressed connection, TLS, another server) is left to Channels' ordinary ``send()``.

``with_wire`` (vbcrm/asgi.py) puts a ``Wire`` in a WebSocket's scope when daphne serves it.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

ASGIApp = Callable[..., Awaitable[Any]]

SCOPE_KEY = "vbcrm.wire"
_FRAMED_KEEP = 256  # texts framed recently (one event's frames, a few languages)
_framed: dict[str, bytes] = {}


def framed(text: str) -> bytes:
    """``text`` as one unmasked, final WebSocket text frame (what a server sends)."""
    frame = _framed.get(text)
    if frame is None:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x81, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x81, 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 127, size)
        frame = head + payload
        if len(_framed) >= _FRAMED_KEEP:
            _framed.clear()
        _framed[text] = frame
    return frame


class Wire:
    """One daphne WebSocket connection (an autobahn protocol on a Twisted transport)."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def send_text(self, text: str) -> bool:
        """Write ``text`` as a frame; False when it must go through ``send()`` instead."""
        protocol = self.protocol
        if (
            protocol.state != protocol.STATE_OPEN
            or protocol._perMessageCompress is not None
            or protocol.send_queue
        ):
            return False
        frame = framed(text)
        if 0 < protocol.maxMessagePayloadSize < len(frame):
            return False  # autobahn refuses it, as before
        _write(protocol.transport, frame)
        return True


def _write(transport: Any, frame: bytes) -> None:
    """Twisted's ``write``, minus the wait for the next turn when its buffer is empty."""
    sock = getattr(transport, "socket", None)
    if (
        sock is None
        or getattr(transport, "TLS", True)
        or not transport.connected
        or transport.disconnecting
        or getattr(transport, "_writeDisconnected", True)
        or getattr(transport, "_tempDataLen", 1)
        or getattr(transport, "offset", 1) != len(getattr(transport, "dataBuffer", b"?"))
    ):
        transport.write(frame)
        return
    try:
        sent = sock.send(frame)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        sent = 0  # the connection is gone: Twisted's write finds out and closes it
    if sent < len(frame):
        transport.write(frame[sent:])


def _daphne_protocol(send: Any) -> Any:
    """The WebSocket protocol behind daphne's ``send`` (``partial(server.handle_reply,
    protocol)``), or None when another server serves."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    owner = getattr(send.func, "__self__", None)
    if getattr(send.func, "__name__", "") != "handle_reply" or owner is None:
        return None
    if type(owner).__module__ != "daphne.server":
        return None
    protocol = send.args[0]
    needed = ("state", "STATE_OPEN", "transport", "send_queue", "_perMessageCompress")
    if not all(hasattr(protocol, name) for name in needed):
        return None
    return protocol


def with_wire(app: ASGIApp) -> ASGIApp:
    """ASGI middleware for WebSockets: a ``Wire`` in the scope when daphne serves."""

    async def wired(scope: dict[str, Any], receive: Any, send: Any) -> None:
        protocol = _daphne_protocol(send)
        if protocol is not None:
            scope = {**scope, SCOPE_KEY: Wire(protocol)}
        await app(scope, receive, send)

    return wired


def wire_of(scope: Mapping[str, object]) -> Wire | None:
    wire = scope.get(SCOPE_KEY)
    return wire if isinstance(wire, Wire) else None
