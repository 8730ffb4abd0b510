"""Fixtures of the simulator tests: a real simulator per test and devices connected to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.whatsapp.simulator.helpers import (
    PHONE,
    Device,
    Recorder,
    S,
)
from whatsapp.gateway import base
from whatsapp.gateway.simulator import SimulatorSession
from whatsapp.simulator import ControlClient, SimulatorServer, run_in_thread


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    # QR codes last long enough that no test races a rotation or an expiry.
    with run_in_thread(qr_interval=5.0, qr_rotations=3) as server:
        yield server


@pytest.fixture
def api(sim: SimulatorServer) -> ControlClient:
    return ControlClient(sim.url)


@pytest.fixture
def make_device() -> Iterator[Callable[..., Device]]:
    devices: list[Device] = []

    def make(url: str, account: str = "1", device_jid: str = "") -> Device:
        events = Recorder()
        config = base.SessionConfig(
            account=account, store="", device_jid=device_jid, options={"url": url}
        )
        device = Device(SimulatorSession(config, events), events)
        device.session.start()
        devices.append(device)
        return device

    yield make
    for device in devices:
        started = time.monotonic()
        device.session.stop(timeout=5)
        assert time.monotonic() - started < 2.0, "stop() must return quickly"
        thread = device.session._thread
        assert thread is not None and not thread.is_alive(), "the session thread leaked"


@pytest.fixture
def linked(sim: SimulatorServer, make_device: Callable[..., Device]) -> Device:
    # A stored device JID the simulator has never seen is accepted as linked.
    device = make_device(sim.url, device_jid=f"{PHONE}:1@s.whatsapp.net")
    device.events.wait_state(S.CONNECTED)
    return device
