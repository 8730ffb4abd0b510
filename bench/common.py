"""Shared pieces: users and real session cookies, linking numbers through the simulator,
the socket client processes, and percentiles."""

from __future__ import annotations

import json
import math
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from bench.infra import PYTHON, ROOT, Stack, http, wait_until

PASSWORD = "bench-password-not-secret"  # noqa: S105 - bench users on a throwaway database


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def hist_pct(hist: dict[int, int], p: float) -> float | None:
    """The p-th percentile of a {value: count} histogram."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return None


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# --- users, sessions, numbers ----------------------------------------------------------


def make_users(prefix: str, count: int) -> list:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    hashed = make_password(PASSWORD)
    users = [User(username=f"{prefix}{i}", password=hashed) for i in range(count)]
    User.objects.bulk_create(users, ignore_conflicts=True)
    return list(User.objects.filter(username__startswith=prefix).order_by("pk"))


def session_cookie(user) -> str:
    """A real login session for ``user`` (what django.contrib.auth.login stores)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def phone_for(index: int) -> str:
    return f"55119{index:08d}"


def link_numbers(s: Stack, owner, names: list[str], timeout: float = 180) -> list:
    """Create numbers and "scan" their QR codes in the simulator; wait until connected."""
    from whatsapp import services
    from whatsapp.models import WhatsAppSession

    created = [services.session_create(owner=owner, name=name) for name in names]
    ids = {row.pk for row in created}
    phones = {row.pk: phone_for(row.pk) for row in created}
    scanned: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for qr in http("GET", f"{s.simulator_url}/api/qr"):
            account = int(qr["account"])
            if account in ids and account not in scanned:
                body = {"account": str(account), "phone": phones[account]}
                http("POST", f"{s.simulator_url}/api/qr/scan", body)
                scanned.add(account)
        connected = WhatsAppSession.objects.filter(pk__in=ids, status="connected").count()
        if connected == len(ids):
            return list(WhatsAppSession.objects.filter(pk__in=ids).order_by("pk"))
        time.sleep(0.2)
    raise TimeoutError(f"only {len(scanned)} of {len(ids)} numbers linked in {timeout}s")


def send(s: Stack, messages: list[dict] | dict) -> Any:
    return http("POST", f"{s.simulator_url}/api/messages", messages)


def wait_messages(count: int, timeout: float = 60) -> None:
    from conversations.models import Message

    wait_until(lambda: Message.objects.count() >= count, timeout, f"{count} stored messages")


# --- socket clients -------------------------------------------------------------------


class SocketClients:
    """Client processes holding ``specs`` sockets between them."""

    def __init__(self, s: Stack, specs: list[dict], events: int, processes: int = 1) -> None:
        self.procs: list[subprocess.Popen] = []
        self.lines: list[queue.Queue] = []
        processes = max(1, min(processes, len(specs)))
        for n in range(processes):
            part = specs[n::processes]
            path = Path(s.workdir) / f"sockets-{id(self)}-{n}.json"
            path.write_text(json.dumps({"sockets": part, "events": events, "timeout": 600}))
            proc = subprocess.Popen(
                [PYTHON, "-m", "bench.sockets", str(path)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=self._read, args=(proc, lines), daemon=True).start()
            self.procs.append(proc)
            self.lines.append(lines)

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    def ready(self, timeout: float = 300) -> tuple[int, int]:
        ok = failed = 0
        for lines in self.lines:
            line = lines.get(timeout=timeout)
            if not line or not line.startswith("ready"):
                raise RuntimeError(f"socket client failed: {line!r}")
            _, a, b = line.split()
            ok, failed = ok + int(a), failed + int(b)
        return ok, failed

    def results(self, timeout: float, on_done: Callable[[], object] | None = None) -> dict:
        """Merge every client's events: t0, sockets reached, first and last arrival.
        ``on_done`` is called once every client reported, before the sockets close."""
        merged: dict[int, list] = {}
        hist: dict[int, int] = {}
        sockets = frame_bytes = resyncs = 0
        deadline = time.monotonic() + timeout
        for proc, lines in zip(self.procs, self.lines, strict=True):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or not line.startswith("{"):
                assert proc.stdin is not None
                proc.stdin.write("stop\n")
                proc.stdin.flush()
                line = lines.get(timeout=30)
            data = json.loads(line)
            sockets += data["sockets"]
            resyncs += data.get("resyncs", 0)
            for bucket, count in data.get("latency_ms_hist", {}).items():
                hist[int(bucket)] = hist.get(int(bucket), 0) + count
            frame_bytes = max(frame_bytes, data.get("frame_bytes", 0))
            for key, (t0, count, first, last) in data["events"].items():
                row = merged.setdefault(int(key), [t0, 0, first, last])
                row[1] += count
                row[2] = min(row[2], first)
                row[3] = max(row[3], last)
        if on_done is not None:
            on_done()
        self.close()
        return {
            "sockets": sockets,
            "events": merged,
            "frame_bytes": frame_bytes,
            "latency_ms_hist": hist,
            "resyncs": resyncs,
        }

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def socket_specs(
    port: int, cookies: list[str], count: int, path: str = "/ws/", protocol: str = "websocket"
) -> list[dict]:
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}{path}"
    return [
        {"url": url, "origin": origin, "cookie": cookies[i % len(cookies)], "protocol": protocol}
        for i in range(count)
    ]


def marker(event_id: int, t0: float) -> str:
    return f"bench#{event_id}#{t0:.6f}#"
