"""Browser tests: Debian's headless Chromium, driven by Playwright, against a live server
started the way ``make run`` starts it (``manage.py serve --worker``: daphne with the
WhatsApp worker embedded) talking to the WhatsApp simulator, both as subprocesses.

The server gets its own database: a SQLite file in a temporary data folder, or, when
DATABASE_URL is set (CI), a PostgreSQL database made for the run and dropped after it.
It runs on the in-memory channel layer even when REDIS_URL is set: it is one process (the
embedded mode), and a shared Redis would mix its groups with other runs'.

Data the tests share (made once): alice owns the number "Support", linked to the
simulator's phone ``PHONE``; bob is its agent; charlie works nothing of it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from whatsapp.simulator.client import ControlClient, ControlError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    # A fake microphone (a beep) that needs no permission prompt: voice notes.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
PHONE = "5511900000001"
PASSWORD = "pw-ui-tests"
TIMEOUT_MS = 20_000

SETUP_SCRIPT = f"""
from django.contrib.auth import get_user_model
from whatsapp import services
User = get_user_model()
users = {{n: User.objects.create_user(username=n, password={PASSWORD!r}, first_name=n.title())
         for n in ("alice", "bob", "charlie")}}
s = services.session_create(owner=users["alice"], name="Support")
services.session_agent_add(session=s, user=users["bob"])
print(s.pk)
"""


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def _server_logs_on_failure(request):
    """A failed browser test shows the end of the live server's logs (CI has nothing else)."""
    yield
    report = getattr(request.node, "report_call", None)
    live = request.node.funcargs.get("live")
    if report is not None and report.failed and live is not None:
        for log in live.logs[-2:]:
            sys.stderr.write(f"--- {log.name} (end)\n{log.read_text()[-6000:]}\n")


def require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (CI installs it)")
    pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ControlError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=2) as response:  # noqa: S310 (our own loopback server)
        return response.status == 200


class _Postgres:
    """A database of the live server's own on the PostgreSQL server of DATABASE_URL."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.name = f"test_ui_{os.getpid()}"
        self.admin_dsn = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{self.name}"))

    def _run(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class LiveServer:
    env: dict[str, str]
    data_dir: Path
    port: int
    sim_port: int
    session_id: int = 0
    proc: subprocess.Popen | None = None
    sim: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control(self) -> ControlClient:
        return ControlClient(f"http://127.0.0.1:{self.sim_port}")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise AssertionError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = self.data_dir / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("w") as out:
            return subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_simulator(self) -> None:
        self.sim = self._spawn(
            "simulator",
            "whatsapp_simulator",
            "--port",
            str(self.sim_port),
            "--qr-interval",
            "1",
            "--qr-rotations",
            "120",
        )
        _wait(lambda: self.control.get("/api/health")["ok"], 20, "the simulator")

    def start(self) -> None:
        self.proc = self._spawn("serve", "serve", "--worker", "--port", str(self.port))
        _wait(lambda: _http_ok(self.url + "/login/"), 30, "the server")

    def stop(self) -> int | None:
        """Stop the server as systemd would (SIGTERM: the worker releases its numbers);
        its exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def close(self) -> None:
        self.stop()
        if self.sim is not None:
            self.sim.terminate()
            try:
                self.sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sim.kill()

    def linked(self, phone: str = PHONE) -> bool:
        return any(n["phone"] == phone and n["connected"] for n in self.control.get("/api/numbers"))

    def scan(self, session_id: int, phone: str) -> None:
        """The phone scans the number's QR code, once the worker shows one."""
        _wait(
            lambda: any(q["account"] == str(session_id) for q in self.control.get("/api/qr")),
            30,
            f"a QR code for number {session_id}",
        )
        self.control.post("/api/qr/scan", {"account": str(session_id), "phone": phone})

    def say(self, phone: str, **message: Any) -> str:
        """A contact (``phone``) writes to the linked number."""
        return self.control.send_message(to=PHONE, **{"from": phone, **message})

    def sent(self) -> list[dict[str, Any]]:
        return self.control.sent(PHONE)


# Package scope: the server stops, and Playwright's event loop closes, once the browser
# tests are done; the async tests that run after them need the main thread's loop free.
@pytest.fixture(scope="package")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    require_browser()
    data_dir = tmp_path_factory.mktemp("ui-server")
    env = {
        **os.environ,
        "VBCRM_DATA_DIR": str(data_dir),
        "WHATSAPP_GATEWAY": "simulator",
        "WHATSAPP_LEASE_SECONDS": "10",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DJANGO_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The webhook tests' receiver listens on loopback.
        "VBCRM_WEBHOOKS_ALLOW_PRIVATE": "1",
    }
    for name in ("REDIS_URL", "VBCRM_MEDIA_ROOT", "WHATSAPP_STORE_DIR", "WHATSAPP_STORE_DSN"):
        env.pop(name, None)
    postgres = None
    if env.get("DATABASE_URL"):
        postgres = _Postgres(env["DATABASE_URL"])
        postgres.create()
        env["DATABASE_URL"] = postgres.url
        env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    server = LiveServer(env=env, data_dir=data_dir, port=_free_port(), sim_port=_free_port())
    env["WHATSAPP_SIMULATOR_URL"] = f"http://127.0.0.1:{server.sim_port}"
    try:
        server.manage("migrate", "--noinput", "--verbosity", "0")
        server.manage("collectstatic", "--noinput", "--verbosity", "0")
        server.session_id = int(server.manage("shell", "--verbosity", "0", "-c", SETUP_SCRIPT))
        server.start_simulator()
        server.start()
        server.scan(server.session_id, PHONE)
        _wait(server.linked, 30, "the number to connect")
        yield server
    except BaseException:
        for log in server.logs:
            sys.stderr.write(f"--- {log.name}\n{log.read_text()[-5000:]}\n")
        raise
    finally:
        server.close()
        if postgres is not None:
            postgres.drop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def browser():
    """Chromium, once for the package; it needs no live server (the demo's test has its own)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def login(browser, live):
    """``login("alice")``: a fresh browser context logged in as that user, on the inbox."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = []

    def open_as(username: str, path: str = "/"):
        context = browser.new_context(base_url=live.url, locale="pt-BR")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []  # every alert/confirm the page opens; none is expected
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        if path != "/":
            page.goto(path)
        return page

    yield open_as
    for context in contexts:
        context.close()
