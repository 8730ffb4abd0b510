"""The simulator and an in-process worker, for end-to-end tests of the worker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.simulator.client import ControlClient
from whatsapp.simulator.server import run_in_thread
from whatsapp.worker import Worker, WorkerConfig


@pytest.fixture
def simulator():
    with run_in_thread(qr_interval=0.5, qr_rotations=20) as server:
        server.control = ControlClient(server.url)
        yield server


@pytest.fixture
def sim_settings(settings, simulator, tmp_path):
    settings.WHATSAPP_GATEWAY = "simulator"
    settings.WHATSAPP_SIMULATOR_URL = simulator.url
    settings.WHATSAPP_STORE_DIR = tmp_path / "store"
    settings.WHATSAPP_STORE_DSN = ""
    return settings


@contextlib.asynccontextmanager
async def running_worker(**overrides) -> AsyncIterator[Worker]:
    config = WorkerConfig.from_settings(**{"tick_seconds": 0.2, **overrides})
    worker = Worker(config)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.shutdown()
        await task
        await sync_to_async(lambda: connection.close())()


async def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, what: str = ""
) -> object:
    """Poll a sync predicate (run off the loop: it may query the database)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await sync_to_async(predicate)()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}: last={last!r}")


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def status_of(session_id: int) -> str:
    return WhatsAppSession.objects.get(pk=session_id).status


async def link(simulator, session: WhatsAppSession, phone: str) -> None:
    """Scan the number's QR code in the simulator and wait until it is connected."""
    qr = await wait_for(
        lambda: WhatsAppSession.objects.get(pk=session.pk).qr_code, what="a QR code"
    )
    assert qr
    await asyncio.to_thread(
        simulator.control.post, "/api/qr/scan", {"account": str(session.pk), "phone": phone}
    )
    await wait_for(lambda: status_of(session.pk) == "connected", what="connected")


async def link_attempt(simulator, session: WhatsAppSession, phone: str) -> None:
    await wait_for(lambda: WhatsAppSession.objects.get(pk=session.pk).qr_code, what="a QR code")
    await asyncio.to_thread(
        simulator.control.post, "/api/qr/scan", {"account": str(session.pk), "phone": phone}
    )


@pytest.fixture
def linked(sim_settings, alice, bob):
    session = services.session_create(owner=alice, name="Support")
    services.session_agent_add(session=session, user=bob)
    return session
