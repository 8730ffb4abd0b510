"""A WebSocket application for daphne that mixes a socket's two ways out: Channels' ASGI
``send()`` and realtime.wire's direct writes (tests/realtime/test_wire.py).

Each frame carries the next number of one counter, taken just before it is written, from
two tasks at once, right from the accept on; every few frames is large enough to fill the
socket's buffers, so that Twisted holds bytes for it. The browser's side checks that the
numbers come in order. The last frame says how many frames went straight into the socket
and how many went behind what Twisted held.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from realtime.wire import wire_of, with_wire

FRAMES_PER_TASK = 300
BIG = 256 * 1024


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    link = wire_of(scope)
    if link is None:
        await send({"type": "websocket.close", "code": 4500})
        return
    transport = link.protocol.transport
    counter = itertools.count()
    ways = {"send": 0, "straight": 0, "behind": 0}

    async def write(n: int, direct: bool) -> None:
        text = json.dumps({"n": n, "pad": "x" * (BIG if n % 25 == 3 else n % 50)})
        if direct:
            held = transport._tempDataLen or transport.offset != len(transport.dataBuffer)
            assert link.send_text(text)
            ways["behind" if held else "straight"] += 1
        else:
            ways["send"] += 1
            await send({"type": "websocket.send", "text": text})

    async def mix(seed: int) -> None:
        for i in range(FRAMES_PER_TASK):
            await write(next(counter), direct=(i * 5 + seed) % 3 != 0)
            if i % 4 == seed % 4:
                await asyncio.sleep(0.002 * (i % 3))  # Twisted gets turns to write

    await send({"type": "websocket.accept"})
    await write(next(counter), direct=True)  # the handshake's answer is still in Twisted
    await asyncio.gather(mix(1), mix(2))
    await send({"type": "websocket.send", "text": json.dumps({"done": next(counter), **ways})})
    while (await receive())["type"] != "websocket.disconnect":
        pass


application = with_wire(_app)
