"""Benchmark 1, fan-out: N authenticated agent sockets watching one number; a stream of
inbound messages; the time from the simulator's send until EVERY socket has the event.

Floor: ``bench.rawasgi`` on the same daphne writes one pre-encoded frame of the same
size to the same number of sockets (time from the trigger to the last socket).
Peer: a Socket.IO 4 server on Node (bench/socketio/server.js) answering the same trigger
with ``io.emit`` to all its sockets, a frame of the same size, timed by the same clients.
"""

from __future__ import annotations

import concurrent.futures
import time

from bench.common import SocketClients, marker, ms, pct, send, socket_specs
from bench.infra import Stack, cpu_seconds, http


class _CPU:
    """CPU time the server processes spent from the first event until every client had
    them all (sockets' connecting and closing left out): less at the mercy of a busy
    machine than the latencies."""

    def __init__(self, pids: list[int] | None) -> None:
        self.pids = pids or []
        self.start = cpu_seconds(self.pids)
        self.end: float | None = None

    def stop(self) -> None:
        self.end = cpu_seconds(self.pids)

    def per(self, events: int) -> float | None:
        if not self.pids or self.end is None or not events:
            return None
        return round((self.end - self.start) * 1000 / events, 1)


def _summary(result: dict, expected_events: int) -> dict:
    events = result["events"]
    sockets = result["sockets"]
    complete = [row for row in events.values() if row[1] >= sockets]
    all_lat = [row[3] - row[0] for row in complete]
    first_lat = [row[2] - row[0] for row in complete]
    spread = [row[3] - row[2] for row in complete]
    return {
        "sockets": sockets,
        "events": expected_events,
        "complete": len(complete),
        "frames_missing": sum(max(0, sockets - row[1]) for row in events.values())
        + (expected_events - len(events)) * sockets,
        "all_p50_ms": ms(pct(all_lat, 50)),
        "all_p95_ms": ms(pct(all_lat, 95)),
        "first_p50_ms": ms(pct(first_lat, 50)),
        "spread_p50_ms": ms(pct(spread, 50)),
        # the first event after the sockets connected (a cold process shows here)
        "first_event_ms": ms(events[0][3] - events[0][0])
        if 0 in events and events[0][1] >= sockets
        else None,
        "all_ms": [ms(x) for x in all_lat],
    }


def run_ours(
    s: Stack,
    ports: list[int],
    cookies: list[str],
    sockets: int,
    events: int,
    rate: float,
    phone: str,
    contact: str,
    pids: list[int] | None = None,
) -> dict:
    """``pids``: the web processes, whose CPU time per event is reported."""
    specs = []
    for i, port in enumerate(ports):
        share = sockets // len(ports) + (1 if i < sockets % len(ports) else 0)
        specs += socket_specs(port, cookies[i::1], share)
    clients = SocketClients(s, specs, events, processes=2 if sockets >= 200 else 1)
    ok, failed = clients.ready()
    time.sleep(1.0)
    cpu = _CPU(pids)
    for i in range(events):
        t0 = time.time()
        send(s, {"to": phone, "from": contact, "push_name": "Bench", "text": marker(i, t0)})
        time.sleep(max(0.0, 1.0 / rate - (time.time() - t0)))
    result = clients.results(timeout=60, on_done=cpu.stop)
    out = _summary(result, events)
    out["cpu_ms_per_event"] = cpu.per(events)
    out["connect_failed"] = failed
    out["frame_bytes"] = result["frame_bytes"]
    return out


SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def run_raw(
    s: Stack,
    ports: list[int],
    sockets: int,
    events: int,
    rate: float,
    size: int,
    *,
    path: str = "/",
    protocol: str = "websocket",
    pids: list[int] | None = None,
) -> dict:
    """The floor (bench.rawasgi), or with ``path=SOCKETIO_PATH, protocol="socketio"`` the
    Socket.IO peer (bench/socketio/server.js): both answer the same trigger."""
    specs = []
    for i, port in enumerate(ports):
        share = sockets // len(ports) + (1 if i < sockets % len(ports) else 0)
        specs += socket_specs(port, [""], share, path=path, protocol=protocol)
    clients = SocketClients(s, specs, events, processes=2 if sockets >= 200 else 1)
    ok, failed = clients.ready()
    time.sleep(1.0)
    cpu = _CPU(pids)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(ports)) as pool:
        for i in range(events):
            t0 = time.time()
            urls = [f"http://127.0.0.1:{p}/fire?id={i}&t0={t0:.6f}&size={size}" for p in ports]
            list(pool.map(lambda u: http("POST", u), urls))
            time.sleep(max(0.0, 1.0 / rate - (time.time() - t0)))
    result = clients.results(timeout=60, on_done=cpu.stop)
    out = _summary(result, events)
    out["cpu_ms_per_event"] = cpu.per(events)
    out["connect_failed"] = failed
    out["frame_bytes"] = result["frame_bytes"]
    return out
