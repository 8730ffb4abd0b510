"""Benchmark 4, memory: RSS and PSS of the worker and of its numbers' child processes with
1, 10 and 50 numbers.

Two kinds of numbers, measured in turn:

* simulated numbers (the baseline): linked in the simulator, each after a little traffic;
* real numbers: a worker with ``WHATSAPP_GATEWAY=neonize`` runs numbers that have no device
  yet. Each child starts the real WhatsApp client, which cannot reach WhatsApp from the
  bench (loopback only) and keeps trying to connect: the client, its Go runtime and the
  library are all loaded, as for a number waiting to be linked.

PSS (proportional set size, from ``/proc/<pid>/smaps_rollup``) divides each shared page
among the processes that map it, so the PSS of the worker and its children adds up to what
they cost the machine together; RSS counts shared pages (the Go library, libpython) once
per process. "Per number" is the PSS of the worker and all its children over the numbers
run, the worker's share included.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import link_numbers, send, wait_messages
from bench.infra import PYTHON, Proc, Stack, children_of, wait_until

# How long real children run before they are measured: a few connect attempts each.
SETTLE_SECONDS = 20.0


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


def _maps_library(pid: int) -> bool:
    """Whether the process has loaded neonize's Go library."""
    try:
        return b"neonize" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def smaps_kib(pid: int) -> dict[str, int]:
    """Rss and Pss of one process in KiB (zeros if it is gone)."""
    found = {"Rss": 0, "Pss": 0}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return found
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in found:
            found[key] = int(rest.split()[0])
    return found


def _mib(kib: float) -> float:
    return round(kib / 1024, 1)


def snapshot(worker_pid: int, numbers: int, per_process: int = 1) -> dict[str, Any]:
    """One row: the worker's and its children's RSS and PSS, and PSS per number."""
    worker = smaps_kib(worker_pid)
    kids = [smaps_kib(pid) for pid in _children(worker_pid)]
    kid_pss = sum(k["Pss"] for k in kids)
    total_pss = worker["Pss"] + kid_pss
    return {
        "numbers": numbers,
        "per_process": per_process,
        "children": len(kids),
        "worker_rss_mib": _mib(worker["Rss"]),
        "worker_pss_mib": _mib(worker["Pss"]),
        "child_rss_mib": _mib(sum(k["Rss"] for k in kids) / len(kids)) if kids else None,
        "child_pss_mib": _mib(kid_pss / len(kids)) if kids else None,
        "total_pss_mib": _mib(total_pss),
        "worker_share_mib": _mib(worker["Pss"] / numbers),
        "per_number_pss_mib": _mib(total_pss / numbers),
    }


def measure(s: Stack, owner, steps: list[int]) -> list[dict]:
    """Simulated numbers: 1, 10, 50 linked numbers, each after five inbound messages."""
    from conversations.models import Message
    from whatsapp.models import WhatsAppSession

    worker = s.start_worker("worker-memory")
    rows = []
    # a number linked earlier is claimed by this fresh worker once the old lease is gone
    for step in steps:
        missing = step - WhatsAppSession.objects.count()
        if missing > 0:
            start = WhatsAppSession.objects.count()
            link_numbers(s, owner, [f"Mem {start + i}" for i in range(missing)])
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
        rows.append(snapshot(worker.pid, len(_children(worker.pid))))
    s.stop(worker)
    return rows


def _start_real_worker(s: Stack, name: str, per_process: int) -> Proc:
    # The simulated numbers are parked (see measure_real); the store check would refuse
    # to start a neonize worker next to numbers linked with the simulator.
    return s.spawn(
        name,
        [PYTHON, "manage.py", "whatsapp_worker"],
        WHATSAPP_GATEWAY="neonize",
        WHATSAPP_IGNORE_STORE_CHECK="1",
        WHATSAPP_NUMBERS_PER_PROCESS=str(per_process),
    )


def measure_real(s: Stack, owner, steps: list[int], per_process: int = 1) -> list[dict]:
    """Real numbers: a neonize worker running 1, 10, 50 numbers that wait to be linked.

    The numbers the other benchmarks linked in the simulator are parked meanwhile (a
    lease held by nobody, far in the future) so this worker claims only its own numbers;
    they are deleted and the others unparked at the end.
    """
    from datetime import timedelta

    from django.utils import timezone

    from whatsapp import services
    from whatsapp.models import WhatsAppSession

    parked = list(WhatsAppSession.objects.values_list("pk", flat=True))
    WhatsAppSession.objects.filter(pk__in=parked).update(
        lease_holder="bench-parked",
        lease_expires_at=timezone.now() + timedelta(days=1),
    )
    created: list[int] = []
    worker = _start_real_worker(s, f"worker-memory-real-{per_process}", per_process)
    rows = []
    try:
        for step in steps:
            for i in range(len(created), step):
                row = services.session_create(owner=owner, name=f"Real {per_process}/{i}")
                created.append(row.pk)
            children = -(-step // per_process)
            wait_until(
                lambda children=children: (
                    worker.check() is None and len(_children(worker.pid)) >= children
                ),
                300,
                f"{children} child processes for {step} real numbers",
                every=1,
            )
            # Measured once every child has loaded the library and every client has
            # failed a connect at least once (its number shows why). Exactly that many
            # children: a number whose lease was lost for a moment (a busy database)
            # leaves a child stopping beside its new one for a while.
            wait_until(
                lambda children=children: (
                    worker.check() is None
                    and len(kids := _children(worker.pid)) == children
                    and all(_maps_library(pid) for pid in kids)
                ),
                300,
                f"{children} child processes loading the WhatsApp library",
                every=1,
            )
            wait_until(
                lambda step=step: (
                    WhatsAppSession.objects.filter(pk__in=created).exclude(status_detail="").count()
                    >= step
                ),
                300,
                f"{step} real clients failing to connect",
                every=1,
            )
            time.sleep(SETTLE_SECONDS)
            worker.check()
            wait_until(
                lambda children=children: len(_children(worker.pid)) == children,
                120,
                f"{children} child processes, no more",
                every=1,
            )
            rows.append(snapshot(worker.pid, step, per_process))
    finally:
        s.stop(worker)
        WhatsAppSession.objects.filter(pk__in=created).delete()
        WhatsAppSession.objects.filter(pk__in=parked).update(
            lease_holder="", lease_token=None, lease_expires_at=None
        )
    return rows
