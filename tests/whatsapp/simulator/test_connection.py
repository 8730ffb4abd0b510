"""The fake WhatsApp network and the gateway session that connects to it: connection life.

Every test runs a real simulator (free port, background thread) and real
SimulatorSession objects in this process; events are collected from the
session's own thread and waited for with timeouts. No database, no Django.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.whatsapp.simulator.helpers import (
    CONTACT,
    CONTACT_JID,
    PHONE,
    Device,
    Recorder,
    S,
    wait_until,
)
from whatsapp.gateway import base
from whatsapp.gateway.simulator import SimulatorSession
from whatsapp.simulator import ControlClient, SimulatorServer, run_in_thread

# --- Connection life -------------------------------------------------------


def test_drop_reconnects_by_itself_and_loses_nothing(api: ControlClient, linked: Device) -> None:
    since = linked.events.mark()
    assert api.post("/api/drop", {"phone": PHONE}) == {"dropped": 1}
    ids = [api.send_message(to=PHONE, **{"from": CONTACT}, text=f"d{i}") for i in range(20)]
    linked.events.wait_state(S.CONNECTED, since=since)
    changes = [e.state for e in linked.events.events[since:] if isinstance(e, base.StateChanged)]
    assert changes == [S.DISCONNECTED, S.CONNECTED]
    linked.events.wait_count(base.InboundMessage, 20, since=since)
    time.sleep(0.1)  # any duplicate would already be here
    assert [m.message_id for m in linked.events.of(base.InboundMessage)] == ids


def test_messages_wait_for_a_disconnected_number_and_arrive_in_order(
    sim: SimulatorServer, api: ControlClient, linked: Device, make_device: Callable[..., Device]
) -> None:
    linked.session.stop()
    wait_until(lambda: not api.get("/api/numbers")[0]["connected"])
    ids = []
    for i in range(30):
        answer = api.post("/api/messages", {"to": PHONE, "from": CONTACT, "text": f"q{i}"})
        assert answer["queued"] is True
        ids.append(answer["message_id"])
    (number,) = api.get("/api/numbers")
    assert (number["connected"], number["queued"]) == (False, 30)
    device = make_device(sim.url, device_jid=f"{PHONE}:1@s.whatsapp.net")
    received = device.events.wait_count(base.InboundMessage, 30)
    assert [m.message_id for m in received] == ids
    assert [m.text for m in received] == [f"q{i}" for i in range(30)]


def test_simulator_down_then_up(make_device: Callable[..., Device]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    device = make_device(f"http://127.0.0.1:{port}", device_jid=f"{PHONE}:3@s.whatsapp.net")
    assert "unreachable" in device.events.wait_state(S.DISCONNECTED).detail
    with pytest.raises(base.GatewayError) as caught:
        device.session.send_text(base.SendText(to=CONTACT_JID, text="x", message_id="Z"))
    assert caught.value.transient
    with run_in_thread(port=port) as server:
        device.events.wait_state(S.CONNECTED, timeout=8)
        (number,) = ControlClient(server.url).get("/api/numbers")
        assert (number["phone"], number["jid"]) == (PHONE, f"{PHONE}:3@s.whatsapp.net")
        result = device.session.send_text(base.SendText(to=CONTACT_JID, text="x", message_id="Z"))
        assert result.message_id == "Z"
        since = device.events.mark()
    # The simulator going away is one more drop: back to retrying.
    device.events.wait_state(S.DISCONNECTED, since=since)
    assert not device.session.is_connected()


def test_logout_from_the_phone(
    sim: SimulatorServer, api: ControlClient, linked: Device, make_device: Callable[..., Device]
) -> None:
    assert api.post("/api/logout", {"phone": PHONE}) == {"ok": True}
    assert "phone" in linked.events.wait_state(S.LOGGED_OUT).detail
    assert api.get("/api/numbers") == []
    with pytest.raises(base.GatewayError) as caught:
        linked.session.send_text(base.SendText(to=CONTACT_JID, text="x", message_id="Y"))
    assert not caught.value.transient
    # The stored device is dead: resuming it is refused.
    again = make_device(sim.url, device_jid=f"{PHONE}:1@s.whatsapp.net")
    again.events.wait_state(S.LOGGED_OUT)
    # The phone may be linked again by QR, as a new device.
    fresh = make_device(sim.url, account="2")
    fresh.events.wait_for(base.QRCode)
    api.post("/api/qr/scan", {"account": "2", "phone": PHONE})
    assert fresh.events.wait_for(base.Paired).jid == f"{PHONE}:2@s.whatsapp.net"


def test_logout_from_the_device(api: ControlClient, linked: Device) -> None:
    linked.session.logout()
    linked.events.wait_state(S.LOGGED_OUT)
    assert api.get("/api/numbers") == []
    linked.session._thread.join(2)
    assert not linked.session._thread.is_alive()


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    with run_in_thread() as server:
        events = Recorder()
        # "localhost" makes aiohttp resolve the name on executor threads.
        url = server.url.replace("127.0.0.1", "localhost")
        config = base.SessionConfig(account="1", store="", options={"url": url})
        session = SimulatorSession(config, events)
        session.start()
        events.wait_for(base.QRCode)
        session.stop(timeout=5)
    wait_until(lambda: set(threading.enumerate()) <= before)
    assert events.states()[-1] is S.STOPPED


def test_commands_before_connecting_are_transient_errors(tmp_path: Path) -> None:
    events = Recorder()
    config = base.SessionConfig(account="1", store="", options={"url": "http://127.0.0.1:9"})
    session = SimulatorSession(config, events)
    with pytest.raises(base.GatewayError) as caught:
        session.mark_read(base.MarkRead(CONTACT_JID, CONTACT_JID, ("A",)))
    assert caught.value.transient, "not started yet"
    session.start()
    try:
        events.wait_state(S.DISCONNECTED)
        ref = b'{"url": "http://127.0.0.1:9/media/x"}'
        for call in (
            lambda: session.send_text(base.SendText(CONTACT_JID, "x", "A")),
            lambda: session.mark_read(base.MarkRead(CONTACT_JID, CONTACT_JID, ("A",))),
            lambda: session.download_media(base.DownloadMedia(ref, str(tmp_path / "f"))),
            lambda: session.request_pair_code(PHONE),
            session.logout,
        ):
            with pytest.raises(base.GatewayError) as caught:
                call()
            assert caught.value.transient
        assert not session.is_connected()
    finally:
        started = time.monotonic()
        session.stop()
        assert time.monotonic() - started < 2.0
    assert not session._thread.is_alive()
    assert events.states()[-1] is S.STOPPED
