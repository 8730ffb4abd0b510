"""Benchmark 4, memory: RSS of the worker and of each number's child process with 1, 10
and 50 linked (simulated) numbers, each after a little traffic."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import link_numbers, send, wait_messages
from bench.infra import Stack, children_of, rss_kib, wait_until


def _children(worker_pid: int) -> list[int]:
    kids = []
    for pid in children_of(worker_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            kids.append(pid)
    return kids


def measure(s: Stack, owner, steps: list[int]) -> list[dict]:
    from conversations.models import Message
    from whatsapp.models import WhatsAppSession

    worker = s.start_worker("worker-memory")
    rows = []
    linked = list(WhatsAppSession.objects.filter(status="connected").order_by("pk"))
    # a number linked earlier is claimed by this fresh worker once the old lease is gone
    for step in steps:
        missing = step - WhatsAppSession.objects.count()
        if missing > 0:
            start = WhatsAppSession.objects.count()
            linked += link_numbers(s, owner, [f"Mem {start + i}" for i in range(missing)])
        wait_until(
            lambda step=step: len(_children(worker.pid)) >= step and worker.check() is None,
            120,
            f"{step} child processes",
        )
        wait_until(
            lambda step=step: WhatsAppSession.objects.filter(status="connected").count() >= step,
            120,
            "numbers connected",
        )
        before = Message.objects.count()
        numbers = list(WhatsAppSession.objects.filter(status="connected").order_by("pk")[:step])
        send(
            s,
            [
                {"to": n.phone_number, "from": "5531900000001", "text": f"memory {j}"}
                for n in numbers
                for j in range(5)
            ],
        )
        wait_messages(before + 5 * len(numbers), timeout=120)
        time.sleep(2)
        kids = [rss_kib(pid) for pid in _children(worker.pid)]
        rows.append(
            {
                "numbers": step,
                "worker_mib": round(rss_kib(worker.pid) / 1024, 1),
                "child_mean_mib": round(sum(kids) / len(kids) / 1024, 1) if kids else None,
                "child_max_mib": round(max(kids) / 1024, 1) if kids else None,
                "total_mib": round((rss_kib(worker.pid) + sum(kids)) / 1024, 1),
            }
        )
    s.stop(worker)
    return rows
