"""The fake WhatsApp network and the gateway session that connects to it: pairing and linking.

Every test runs a real simulator (free port, background thread) and real
SimulatorSession objects in this process; events are collected from the
session's own thread and waited for with timeouts. No database, no Django.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.whatsapp.simulator.helpers import (
    PHONE,
    Device,
    S,
    inbound,
    link_by_qr,
    post_error,
)
from whatsapp.gateway import base
from whatsapp.simulator import ControlClient, SimulatorServer, run_in_thread
from whatsapp.simulator.server import PAIR_CODE_ALPHABET

# --- Pairing ---------------------------------------------------------------


def test_it_answers_health(api: ControlClient) -> None:
    assert api.get("/api/health") == {"ok": True}


def test_qr_codes_appear_rotate_and_are_listed(make_device: Callable[..., Device]) -> None:
    with run_in_thread(qr_interval=0.15, qr_rotations=50) as server:
        api = ControlClient(server.url)
        device = make_device(server.url, account="42")
        codes = [qr.code for qr in device.events.wait_count(base.QRCode, 3)]
        assert len(set(codes)) == 3 and all(code.startswith("2@") for code in codes)
        assert device.events.states()[:2] == [S.STARTING, S.WAITING_QR]
        pending = api.get("/api/qr")
        assert [p["account"] for p in pending] == ["42"]
        assert pending[0]["code"] in codes[1:] + [device.events.of(base.QRCode)[-1].code]
        # A rotated-out code is dead.
        assert post_error(api, "/api/qr/scan", {"code": codes[0], "phone": PHONE}).status == 409


def test_scanning_the_qr_links_the_device(
    sim: SimulatorServer, api: ControlClient, make_device: Callable[..., Device]
) -> None:
    device = make_device(sim.url, account="7")
    code = device.events.wait_for(base.QRCode).code
    answer = api.post("/api/qr/scan", {"code": code, "phone": PHONE, "push_name": "Loja"})
    assert answer == {"account": "7", "phone": PHONE, "jid": f"{PHONE}:1@s.whatsapp.net"}
    paired = device.events.wait_for(base.Paired)
    assert paired == base.Paired(jid=f"{PHONE}:1@s.whatsapp.net", phone=PHONE, push_name="Loja")
    device.events.wait_state(S.CONNECTED)
    events = device.events.events
    assert events.index(paired) < events.index(base.StateChanged(S.CONNECTED))
    assert device.session.is_connected()
    numbers = api.get("/api/numbers")
    assert [(n["account"], n["phone"], n["connected"]) for n in numbers] == [("7", PHONE, True)]
    assert api.get("/api/qr") == []
    error = post_error(api, "/api/qr/scan", {"code": code, "phone": PHONE})
    assert error.status == 409 and "pending" in error.error


def test_scan_by_account_and_resume_after_drop_uses_the_new_device(
    sim: SimulatorServer, api: ControlClient, make_device: Callable[..., Device]
) -> None:
    device = make_device(sim.url, account="8")
    device.events.wait_for(base.QRCode)
    api.post("/api/qr/scan", {"account": "8", "phone": PHONE})
    device.events.wait_state(S.CONNECTED)
    since = device.events.mark()
    api.post("/api/drop", {"phone": PHONE})
    device.events.wait_state(S.CONNECTED, since=since)
    # It came back as the linked device, not as a new pairing.
    assert not device.events.of(base.QRCode)[1:]
    assert api.get("/api/numbers")[0]["jid"] == f"{PHONE}:1@s.whatsapp.net"


def test_pairing_expires_after_the_last_rotation(make_device: Callable[..., Device]) -> None:
    with run_in_thread(qr_interval=0.1, qr_rotations=3) as server:
        device = make_device(server.url)
        ended = device.events.wait_state(S.PAIRING_EXPIRED)
        assert ended.detail
        assert len(device.events.of(base.QRCode)) == 3
        assert ControlClient(server.url).get("/api/qr") == []
        device.session._thread.join(2)
        assert not device.session._thread.is_alive(), "the session stops itself"
        device.session.stop()
        assert device.events.states()[-1] is S.PAIRING_EXPIRED


def test_pairing_code_flow(
    sim: SimulatorServer, api: ControlClient, make_device: Callable[..., Device]
) -> None:
    device = make_device(sim.url, account="9")
    device.events.wait_state(S.WAITING_QR)
    code = device.session.request_pair_code("+55 11 99999-0001")
    assert len(code) == 8 and set(code) <= set(PAIR_CODE_ALPHABET)
    device.events.wait_state(S.PAIRING)
    listed = api.get("/api/pair-codes")
    assert [(p["account"], p["code"], p["phone"]) for p in listed] == [("9", code, PHONE)]
    api.post("/api/pair-codes/confirm", {"code": code})
    assert device.events.wait_for(base.Paired).phone == PHONE
    device.events.wait_state(S.CONNECTED)
    assert api.get("/api/pair-codes") == []
    assert post_error(api, "/api/pair-codes/confirm", {"code": code}).status == 409
    with pytest.raises(base.GatewayError) as caught:
        device.session.request_pair_code(PHONE)
    assert not caught.value.transient


def test_a_phone_keeps_its_linked_devices_when_it_links_another(
    sim: SimulatorServer, api: ControlClient, make_device: Callable[..., Device]
) -> None:
    first, second = make_device(sim.url, account="1"), make_device(sim.url, account="2")
    jids = [link_by_qr(api, first, "1"), link_by_qr(api, second, "2")]
    assert jids == [f"{PHONE}:1@s.whatsapp.net", f"{PHONE}:2@s.whatsapp.net"]
    numbers = api.get("/api/numbers")
    assert [(n["account"], n["jid"], n["connected"]) for n in numbers] == [
        ("1", jids[0], True),
        ("2", jids[1], True),
    ]
    assert first.session.is_connected() and S.LOGGED_OUT not in first.events.states()
    # WhatsApp delivers to every linked device of the phone
    for device in (first, second):
        assert inbound(api, device, text="para todos").text == "para todos"
    # the phone can log out one device and keep the other
    api.post("/api/logout", {"phone": PHONE, "account": "1"})
    first.events.wait_state(S.LOGGED_OUT)
    assert [n["account"] for n in api.get("/api/numbers")] == ["2"]
    assert second.session.is_connected()


def test_a_fifth_linked_device_logs_the_oldest_out(
    sim: SimulatorServer, api: ControlClient, make_device: Callable[..., Device]
) -> None:
    devices = [make_device(sim.url, account=str(n)) for n in range(1, 6)]
    for number, device in enumerate(devices[:4], start=1):
        link_by_qr(api, device, str(number))
    assert len(api.get("/api/numbers")) == 4
    link_by_qr(api, devices[4], "5")
    assert "oldest" in devices[0].events.wait_state(S.LOGGED_OUT).detail
    assert [n["account"] for n in api.get("/api/numbers")] == ["2", "3", "4", "5"]
    assert all(d.session.is_connected() for d in devices[1:])
    # the unlinked device cannot come back
    again = make_device(sim.url, account="1", device_jid=f"{PHONE}:1@s.whatsapp.net")
    again.events.wait_state(S.LOGGED_OUT)


def test_a_second_connection_for_the_account_replaces_the_first(
    sim: SimulatorServer, make_device: Callable[..., Device]
) -> None:
    first = make_device(sim.url, device_jid=f"{PHONE}:1@s.whatsapp.net")
    first.events.wait_state(S.CONNECTED)
    second = make_device(sim.url, device_jid=f"{PHONE}:1@s.whatsapp.net")
    second.events.wait_state(S.CONNECTED)
    assert "replaced" in first.events.wait_state(S.STOPPED).detail
    assert second.session.is_connected() and not first.session.is_connected()
