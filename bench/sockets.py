"""The browser side of the benchmarks: many WebSockets in one process (aiohttp).

Run as ``python -m bench.sockets SPEC.json``. The spec lists the sockets
(``[{"url", "cookie"}]``) and how many marked events to expect. It prints
``ready <open> <failed>`` once every socket is open, then records, for every
frame that carries a marker ``bench#<id>#<t0>#``, when each socket got it;
after ``events`` complete (or ``stop`` on stdin, or the timeout) it prints one
JSON line: ``{"sockets": n, "events": {id: [t0, count, first, last]}, "latency_ms_hist":
{ms: frames}, "resyncs": n}`` (every socket's latency per frame, and the catch-up requests
the server sent).
A spec with ``"protocol": "socketio"`` speaks Socket.IO 4 over the WebSocket (the fan-out's
peer, bench/socketio/server.js): the socket counts as open once its namespace is joined.
Times are ``time.time()``, so several client processes on one machine compare.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

MARK = "bench#"
RESYNC = '{"type": "resync"'
CONNECT_TRIES = 6
failures: dict[str, int] = {}  # why sockets failed to open, printed to stderr
retries = [0]  # handshakes tried again


async def _socketio_connect(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Socket.IO over a plain WebSocket: the Engine.IO open packet ``0{...}``, then ``40``
    joins the default namespace, answered ``40{...}``; from then on emits arrive as
    ``42["event", data]`` and pings ``2`` want a ``3``."""
    async with asyncio.timeout(30):
        opened = await ws.receive_str()
        if not opened.startswith("0{"):
            raise ValueError(f"not an Engine.IO open packet: {opened[:40]!r}")
        await ws.send_str("40")
        while True:
            reply = await ws.receive_str()
            if reply.startswith("40"):
                return
            if reply == "2":
                await ws.send_str("3")
            elif reply.startswith("44"):
                raise ValueError(f"namespace refused: {reply[:80]!r}")


async def _one(
    session: aiohttp.ClientSession,
    spec: dict,
    opened: list,
    seen: dict,
    done: asyncio.Event,
    gate: asyncio.Semaphore,
    target: list,
    sizes: list,
    hist: dict,
    resyncs: list,
) -> None:
    headers = {"Cookie": spec.get("cookie", ""), "Origin": spec["origin"]}
    socketio = spec.get("protocol") == "socketio"
    # A refused or dropped handshake is tried again, as the page reconnects: on a busy
    # machine a server may not accept a burst of sockets within its handshake timeout.
    for attempt in range(CONNECT_TRIES):
        async with gate:
            try:
                ws = await session.ws_connect(spec["url"], headers=headers, heartbeat=None)
                if socketio:
                    await _socketio_connect(ws)
                break
            except (aiohttp.ClientError, OSError, ValueError) as exc:  # TimeoutError too
                why = f"{type(exc).__name__}: {exc}"[:160]
        if attempt == CONNECT_TRIES - 1:
            opened.append(False)
            failures[why] = failures.get(why, 0) + 1
            return
        retries[0] += 1
        await asyncio.sleep(0.5 * (attempt + 1))
    opened.append(True)
    try:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = time.time()
            if socketio and msg.data == "2":  # Engine.IO ping: answer pong
                await ws.send_str("3")
                continue
            for text in msg.data.split("\n"):  # a busy server sends several frames at once
                if text.startswith(RESYNC):
                    resyncs[0] += 1
                    continue
                i = text.find(MARK)
                if i < 0:
                    continue
                parts = text[i + len(MARK) : i + 64].split("#", 2)
                event_id = int(parts[0])
                row = seen.get(event_id)
                if not sizes:
                    sizes.append(len(text.encode()))
                if row is None:
                    seen[event_id] = row = [float(parts[1]), 0, now, now]
                row[1] += 1
                row[3] = now
                bucket = int((now - row[0]) * 1000)  # this socket's latency, whole ms
                hist[bucket] = hist.get(bucket, 0) + 1
                if (
                    row[1] == target[0]
                    and len([r for r in seen.values() if r[1] >= target[0]]) >= (target[1])
                ):
                    done.set()
    finally:
        await ws.close()


async def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    sockets = spec["sockets"]
    seen: dict[int, list] = {}
    sizes: list[int] = []
    hist: dict[int, int] = {}
    resyncs = [0]
    opened: list[bool] = []
    done = asyncio.Event()
    target = [len(sockets), spec["events"]]
    gate = asyncio.Semaphore(spec.get("concurrency", 16))
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(
                _one(session, s, opened, seen, done, gate, target, sizes, hist, resyncs)
            )
            for s in sockets
        ]
        while len(opened) < len(sockets):
            await asyncio.sleep(0.05)
        ok = sum(opened)
        target[0] = ok
        for why, count in failures.items():
            print(f"sockets: {count} failed to open: {why}", file=sys.stderr, flush=True)
        if retries[0]:
            print(f"sockets: {retries[0]} handshakes tried again", file=sys.stderr, flush=True)
        print(f"ready {ok} {len(sockets) - ok}", flush=True)

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_stdin() -> None:
            line = sys.stdin.readline()
            if not line or line.strip() == "stop":
                stop.set()

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        waiters = [asyncio.create_task(done.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(waiters, timeout=spec.get("timeout", 120), return_when="FIRST_COMPLETED")
        for w in waiters:
            w.cancel()
        out = {
            "sockets": ok,
            "events": seen,
            "frame_bytes": sizes[0] if sizes else 0,
            "latency_ms_hist": hist,
            "resyncs": resyncs[0],
        }
        print(json.dumps(out), flush=True)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
