"""The fan-out floor: a minimal ASGI app, served by the same daphne, that writes one
pre-encoded frame to every open socket. No auth, no channel layer, no Django.

``POST /fire?id=<n>&t0=<time>&size=<bytes>`` builds one frame carrying the bench
marker, padded to ``size`` (the size of our real ``new_message`` frame), and sends it
to every socket in a plain loop.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

_sends: dict[int, object] = {}


async def _websocket(scope, receive, send) -> None:
    key = id(send)
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            _sends[key] = send
        elif event["type"] == "websocket.disconnect":
            _sends.pop(key, None)
            return


async def _http(scope, receive, send) -> None:
    while (await receive()).get("more_body"):
        pass
    query = parse_qs(scope.get("query_string", b"").decode())
    status, body = 404, b""
    if scope["path"] == "/fire":
        event_id = int(query["id"][0])
        t0 = float(query["t0"][0])
        size = int(query.get("size", ["2000"])[0])
        text = f"bench#{event_id}#{t0:.6f}#"
        bare = len(json.dumps({"type": "new_message", "body": text, "pad": ""}))
        frame = json.dumps({"type": "new_message", "body": text, "pad": "x" * max(0, size - bare)})
        for ws_send in list(_sends.values()):
            await ws_send({"type": "websocket.send", "text": frame})
        status, body = 200, str(len(_sends)).encode()
    elif scope["path"] == "/count":
        status, body = 200, str(len(_sends)).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
