"""Benchmark 5, load hold: a deployment at a steady rate for a while. Two web processes
and two workers on PostgreSQL and Redis, agent sockets split between the web processes,
every agent on every number, inbound messages paced evenly across the numbers.

For each rate: every socket's latency per frame (the simulator's send until that socket
has the ``new_message``), p50 and p99; frames never shown live (events × sockets, less
the frames that arrived); the catch-up requests (``resync``) the web processes sent; the
live events the workers' senders dropped and the gaps the web processes' hubs found
(from their logs). A page that got a resync catches up from the database, so a missing
frame with a resync is late, not lost; the target is none missing at all.
"""

from __future__ import annotations

import math
import time

from bench import common
from bench.common import SocketClients, hist_pct, marker, send, socket_specs
from bench.infra import PYTHON, Proc, Stack, children_of, cpu_seconds, postgres_pids

CONTACTS_PER_NUMBER = 10
TICK = 0.02  # the pacer sends what is due every 20 ms


def _log_lines(procs: list[Proc], needle: str) -> int:
    count = 0
    for proc in procs:
        try:
            count += proc.log_path.read_text(errors="replace").count(needle)
        except OSError:
            pass
    return count


def _pace(s: Stack, phones: list[str], rate: float, seconds: float, first_id: int) -> int:
    """Send ``rate`` messages a second for ``seconds``, round robin over the numbers and
    their contacts; each message carries its id and send time. Returns how many."""
    sent = 0
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) + 1 - sent
        if due > 0:
            batch = []
            t0 = time.time()
            for _ in range(due):
                n = first_id + sent
                phone = phones[n % len(phones)]
                contact = (
                    f"55118{(n // len(phones)) % CONTACTS_PER_NUMBER:02d}{n % len(phones):06d}"
                )
                text = marker(n, t0) + " load hold"
                batch.append({"to": phone, "from": contact, "push_name": "Hold", "text": text})
                sent += 1
            send(s, batch)
        time.sleep(max(0.0, TICK - (time.monotonic() - start - elapsed)))
    return sent


def run(
    s: Stack,
    owner,
    *,
    rates: list[float],
    seconds: float,
    numbers: int,
    sockets: int,
) -> list[dict]:
    from whatsapp import services

    # room for every number between the two (and the bench's first number, already linked)
    per_worker = math.ceil(numbers / 2) + 1
    workers = [
        s.spawn(
            f"hold-worker{i}",
            [PYTHON, "manage.py", "whatsapp_worker", "--max-numbers", str(per_worker)],
        )
        for i in (1, 2)
    ]
    linked = common.link_numbers(s, owner, [f"Hold {i}" for i in range(numbers)])
    phones = [row.phone_number for row in linked]
    agents = common.make_users("hold-agent", max(1, sockets // 2))
    for row in linked:
        for agent in agents:
            services.session_agent_add(session=row, user=agent)
    cookies = [common.session_cookie(agents[i % len(agents)]) for i in range(sockets)]
    webs = [s.start_web(f"hold-web{i}") for i in (1, 2)]
    procs = workers + [proc for proc, _port in webs]
    # One message per number first: contacts and conversations exist before timing.
    from conversations.models import Message

    before = Message.objects.count()
    send(s, [{"to": p, "from": "5511800000000", "text": "warm up"} for p in phones])
    common.wait_messages(before + len(phones))

    out = []
    next_id = 0
    for rate in rates:
        specs = []
        for i, (_proc, port) in enumerate(webs):
            specs += socket_specs(port, cookies[i::2], sockets // 2 + (i < sockets % 2))
        expected = int(rate * seconds)
        clients = SocketClients(s, specs, expected, processes=2)
        ok, failed = clients.ready()
        time.sleep(1.0)
        drops_before = _log_lines(procs, "dropped a message")
        gaps_before = _log_lines(procs, "never arrived")
        recover_before = _log_lines(procs, "receive failed")
        pids = {
            "webs": [proc.pid for proc, _port in webs],
            "workers+children": [pid for w in workers for pid in [w.pid, *children_of(w.pid)]],
            "postgres": postgres_pids(),
            "redis+simulator": [p.pid for p in s.procs if p.name in ("redis", "simulator")],
            "socket clients": [p.pid for p in clients.procs],
        }
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        started = time.monotonic()
        sent = _pace(s, phones, rate, seconds, next_id)
        paced = time.monotonic() - started
        cpu = {
            name: round((cpu_seconds(p) - cpu_before[name]) / paced, 2) for name, p in pids.items()
        }
        result = clients.results(timeout=60)
        events = {k: v for k, v in result["events"].items() if k >= next_id}
        next_id += sent
        received = sum(row[1] for row in events.values())
        hist = result["latency_ms_hist"]
        out.append(
            {
                "rate": rate,
                "seconds": seconds,
                "paced_rate": round(sent / paced, 1),
                "sockets": ok,
                "connect_failed": failed,
                "events": sent,
                "frames_expected": sent * ok,
                "frames_missing": sent * ok - received,
                "p50_ms": hist_pct(hist, 50),
                "p99_ms": hist_pct(hist, 99),
                "max_ms": max(hist) if hist else None,
                "resyncs": result["resyncs"],
                "sender_drops": _log_lines(procs, "dropped a message") - drops_before,
                "hub_gaps": _log_lines(procs, "never arrived") - gaps_before,
                "hub_receive_failures": _log_lines(procs, "receive failed") - recover_before,
                "cpu_cores": cpu,  # CPU seconds per second while paced, by process group
            }
        )
        row = out[-1]
        print(
            f"  load hold {rate}/s: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"missing {row['frames_missing']}/{row['frames_expected']}, "
            f"resyncs {row['resyncs']}, drops {row['sender_drops']}, gaps {row['hub_gaps']}; "
            f"CPU cores {cpu}",
            flush=True,
        )
    for proc in procs:
        s.stop(proc)
    return out
