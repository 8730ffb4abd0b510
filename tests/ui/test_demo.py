"""``manage.py demo`` for real: started as `make demo` starts it, seen in a browser.

Its own free ports and a temporary data folder; it links its number and has its customers
write by itself, so the test only logs in as ``demo``, watches, answers, and stops it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import ROOT, TIMEOUT_MS, _free_port, _http_ok, _wait, require_browser
from vbcrm.management.commands.demo import CUSTOMERS, USERNAME


@dataclass
class Demo:
    proc: subprocess.Popen
    log: Path
    port: int
    sim_port: int
    data: Path
    password: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """Ctrl-C's twin for a service: SIGTERM, then the demo's own clean stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def _port_free(port: int) -> bool:
    """Nobody listens on ``port`` (connections the browser left in TIME_WAIT don't count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _processes_with(variable: str) -> list[int]:
    """Processes whose environment holds ``variable`` (Linux's /proc; none found elsewhere)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture
def demo(request, tmp_path) -> Iterator[Demo]:
    require_browser()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VBCRM_DEMO", None)
    port, sim_port = _free_port(), _free_port()
    data = (tmp_path / "data").resolve()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port), "--sim-port"]
            + [str(sim_port), "--every", "1", "--data-dir", str(data)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Demo(proc=proc, log=log, port=port, sim_port=sim_port, data=data)
    try:
        found = _wait(
            lambda: re.search(r"password: (\S+)", running.output()) or proc.poll() is not None,
            120,
            "the demo's login in its output",
        )
        assert proc.poll() is None, f"the demo exited:\n{running.output()}"
        running.password = found.group(1)
        yield running
    finally:
        running.stop()
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            sys.stderr.write(f"--- demo output\n{running.output()[-6000:]}\n")


def test_the_demo_links_its_number_and_its_customers_write_into_the_inbox(demo, browser):
    output = demo.output()
    assert f"open {demo.url}/ and log in" in output
    assert f"username: {USERNAME}" in output
    assert "is linked to the built-in WhatsApp simulator" in output
    assert _http_ok(demo.url + "/login/")

    context = browser.new_context(base_url=demo.url, locale="pt-BR")
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", demo.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)

        # A customer's message shows up in the inbox (live or on load: they write every second).
        names = "|".join(re.escape(c.name) for c in CUSTOMERS)
        row = page.locator(".conversation-row", has_text=re.compile(names)).first
        expect(row).to_be_visible()
        before = page.locator(".conversation-row").count()
        page.wait_for_function(
            "(n) => document.querySelectorAll('.conversation-row').length > n"
            " || [...document.querySelectorAll('.conversation-row .badge')]"
            ".some(b => Number(b.textContent) > 1)",
            arg=before,
        )

        # The agent answers; the customer's phone reports it delivered, then read.
        row.locator(".row-link").click()
        page.fill("#composer-text", "Olá! Já vou verificar para você.")
        page.press("#composer-text", "Enter")
        reply = page.locator("#messages .msg.out").last
        expect(reply).to_have_attribute("data-status", "read")
    finally:
        context.close()

    running = _processes_with(f"VBCRM_DATA_DIR={demo.data}")
    assert len(running) >= 2  # the demo and its number's process
    assert demo.stop() == 0
    output = demo.output()
    assert output.rstrip().endswith("Demo stopped.")
    assert "got your reply" in output
    assert _port_free(demo.port) and _port_free(demo.sim_port)
    # The number's own process (the worker's child) is gone too.
    assert _wait(lambda: not _processes_with(f"VBCRM_DATA_DIR={demo.data}"), 10, "no process left")
