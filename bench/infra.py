"""What the benchmarks run on: a bench database, a private Redis, and our processes.

Everything listens on loopback. Processes are started with ``start_new_session`` and
stopped by their own pid (SIGTERM, then SIGKILL on their process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(
    method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 30
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def rss_kib(pid: int) -> int:
    """Resident memory of one process (VmRSS), in KiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (0 for one that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its backends come and go)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after the last ")"
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class Proc:
    """A process of ours, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{tail}")

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


class Stack:
    """The bench database, a private Redis and the processes started on them."""

    def __init__(self, database_url: str, redis_url: str | None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="vbcrm-bench-"))
        self.database_url = database_url
        self._redis_url = redis_url
        self.redis_url = ""
        self.procs: list[Proc] = []
        self.secret_key = secrets.token_urlsafe(50)
        self.simulator_url = ""

    # --- services ---------------------------------------------------------------------

    def start_redis(self) -> None:
        if self._redis_url:
            self.redis_url = self._redis_url
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: install it or set BENCH_REDIS_URL")
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.procs.append(Proc("redis", args, dict(os.environ), self.workdir))
        wait_until(lambda: port_open(port), 10, "redis")
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def recreate_database(self) -> None:
        import psycopg
        from psycopg import sql

        base, _, name = self.database_url.rpartition("/")
        try:
            admin = psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise SystemExit(
                f"bench: cannot reach PostgreSQL at {base}/ ({exc}). Start it (as for the "
                "tests), or point BENCH_DATABASE_URL at a server where this user may create "
                "and drop the bench database."
            ) from None
        with admin as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "VBCRM_", "WHATSAPP_"))
            and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "DJANGO_SECRET_KEY": self.secret_key,
                "DJANGO_READ_DOT_ENV_FILE": "0",
                "DJANGO_LOG_LEVEL": "WARNING",
                "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
                "VBCRM_DATA_DIR": str(self.workdir / "data"),
                "VBCRM_MEDIA_ROOT": str(self.workdir / "media"),
                "VBCRM_MAX_NUMBERS_PER_OWNER": "1000",
                # the ingest bench's dead webhook receiver listens on loopback
                "VBCRM_WEBHOOKS_ALLOW_PRIVATE": "1",
                "WHATSAPP_GATEWAY": "simulator",
                "WHATSAPP_SIMULATOR_URL": self.simulator_url or "http://127.0.0.1:1",
                "WHATSAPP_STORE_DIR": str(self.workdir / "store"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    # --- processes ----------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], **env: str) -> Proc:
        proc = Proc(name, args, self.env(**env), self.workdir)
        self.procs.append(proc)
        return proc

    def start_simulator(self) -> Proc:
        port = free_port()
        proc = self.spawn(
            "simulator",
            [PYTHON, "-m", "whatsapp.simulator", "--port", str(port), "--qr-interval", "30"],
        )
        wait_until(lambda: proc.check() or port_open(port), 20, "the simulator")
        self.simulator_url = f"http://127.0.0.1:{port}"
        return proc

    def start_web(self, name: str, *, worker: bool = False) -> tuple[Proc, int]:
        port = free_port()
        flag = "--worker" if worker else "--no-worker"
        args = [PYTHON, "manage.py", "serve", "--port", str(port), flag]
        proc = self.spawn(name, args)
        wait_until(lambda: proc.check() or port_open(port), 60, name)
        return proc, port

    def start_raw(self, name: str) -> tuple[Proc, int]:
        port = free_port()
        args = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        args += ["--verbosity", "0", "bench.rawasgi:application"]
        proc = self.spawn(name, args)
        wait_until(lambda: proc.check() or port_open(port), 60, name)
        return proc, port

    def start_socketio(self, name: str) -> tuple[Proc, int] | str:
        """The Socket.IO peer (bench/socketio/server.js) on Node, its pinned ``socket.io``
        installed with npm on first use; or why it cannot run."""
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None:
            return "node not found"
        folder = ROOT / "bench" / "socketio"
        if not (folder / "node_modules" / "socket.io").is_dir():
            if npm is None:
                return "npm not found (to install socket.io)"
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                return f"npm ci failed: {(done.stderr or done.stdout).strip()[-300:]}"
        port = free_port()
        proc = self.spawn(name, [node, str(folder / "server.js"), str(port)])
        wait_until(lambda: proc.check() or port_open(port), 30, name)
        return proc, port

    def start_worker(self, name: str = "worker") -> Proc:
        return self.spawn(name, [PYTHON, "manage.py", "whatsapp_worker"])

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        # the processes' logs stay beside the results (git-ignored) for a post-mortem
        logs = ROOT / "bench" / "results" / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        for log in self.workdir.glob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def stack(database_url: str, redis_url: str | None) -> Iterator[Stack]:
    s = Stack(database_url, redis_url)
    try:
        yield s
    finally:
        s.close()


def django_setup(s: Stack) -> None:
    """Configure Django in this process against the bench database (the orchestrator
    uses the ORM and the services to set things up, like an operator would)."""
    for key, value in s.env().items():
        if key.startswith(("DJANGO_", "VBCRM_", "WHATSAPP_")) or key in (
            "DATABASE_URL",
            "REDIS_URL",
        ):
            os.environ[key] = value
    import django

    django.setup()


def with_retries(fn: Callable[[], Any], tries: int = 3) -> Any:
    for attempt in range(tries):
        try:
            return fn()
        except (urllib.error.URLError, ConnectionError):
            if attempt == tries - 1:
                raise
            time.sleep(0.5)
    return None
