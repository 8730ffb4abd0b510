"""The operator's manage.py commands."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.simulator.client import ControlError

pytestmark = pytest.mark.django_db(transaction=True)


def _scan_when_shown(simulator, phone: str, pair: bool = False) -> threading.Thread:
    def scan() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if pair:
                if simulator.control.get("/api/pair-codes"):
                    time.sleep(1.0)  # let the command print it first
                    # the code pending now: a busy machine may have asked for a new one
                    codes = simulator.control.get("/api/pair-codes")
                    try:
                        simulator.control.post(
                            "/api/pair-codes/confirm", {"code": codes[0]["code"]}
                        )
                        return
                    except (ControlError, IndexError):
                        continue  # replaced meanwhile: confirm the new one
            else:
                pending = simulator.control.get("/api/qr")
                if pending:
                    time.sleep(1.0)  # let the command draw it first
                    simulator.control.post(
                        "/api/qr/scan", {"account": pending[0]["account"], "phone": phone}
                    )
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=scan, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(90)
def test_connect_shows_the_qr_and_waits_until_linked(sim_settings, simulator, alice):
    out = io.StringIO()
    scanner = _scan_when_shown(simulator, "5511900000001")
    call_command("whatsapp_connect", "Vendas", owner="alice", timeout=40, stdout=out)
    scanner.join(5)
    text = out.getvalue()
    assert "Created number 'Vendas'" in text
    assert "█" in text  # the QR code, drawn in the terminal
    assert "Connected: 'Vendas' is linked to +5511900000001." in text
    session = WhatsAppSession.objects.get(name="Vendas")
    assert session.owner == alice and session.phone_number == "5511900000001"
    # it ran the number itself, and let it go when done
    assert session.lease_holder == ""


@pytest.mark.timeout(60)
def test_connect_says_why_each_try_to_reach_whatsapp_failed(sim_settings, alice):
    with socket.socket() as s:  # a port nobody listens on: WhatsApp is unreachable
        s.bind(("127.0.0.1", 0))
        sim_settings.WHATSAPP_SIMULATOR_URL = f"http://127.0.0.1:{s.getsockname()[1]}"
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="Not linked after 4 seconds"):
        call_command("whatsapp_connect", "Vendas", owner="alice", timeout=4, stdout=out, stderr=err)
    failures = [line for line in err.getvalue().splitlines() if "Could not reach" in line]
    assert failures, err.getvalue()
    assert all(line.endswith("Retrying...") and "127.0.0.1" in line for line in failures)
    assert "█" not in out.getvalue()  # no QR code without WhatsApp


@pytest.mark.timeout(90)
def test_connect_with_a_pairing_code(sim_settings, simulator, alice):
    out = io.StringIO()
    scanner = _scan_when_shown(simulator, "", pair=True)
    call_command(
        "whatsapp_connect",
        "P",
        owner="alice",
        pair_phone="+55 11 90000-0003",
        timeout=40,
        stdout=out,
    )
    scanner.join(5)
    assert "Pairing code:" in out.getvalue()
    assert WhatsAppSession.objects.get(name="P").phone_number == "5511900000003"


def test_connect_explains_bad_input(alice, settings):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("whatsapp_connect", "X", owner="nobody")
    with pytest.raises(CommandError, match="country code"):
        call_command("whatsapp_connect", "X", owner="alice", pair_phone="12")
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 1
    services.session_create(owner=alice, name="Only")
    with pytest.raises(CommandError, match="most allowed"):
        call_command("whatsapp_connect", "Another", owner="alice")


def test_worker_refuses_the_in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("whatsapp_worker")


def test_sessions_lists_every_number(number, charlie):
    services.session_create(owner=charlie, name="Charlie's")
    out = io.StringIO()
    call_command("whatsapp_sessions", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "OWNER",
        "STATUS",
        "PHONE",
        "LEASE",
        "HOLDER",
        "LAST",
        "EVENT",
    ]
    assert any("Support" in line and "alice" in line and "new" in line for line in lines)
    assert any("Charlie's" in line and "charlie" in line for line in lines)


def test_logout_without_a_worker_marks_it_logged_out(number):
    services.session_on_paired(
        session_id=number.pk, jid="55119:1@s.whatsapp.net", phone="5511900000001"
    )
    services.session_on_state(session_id=number.pk, state="connected")
    out = io.StringIO()
    call_command("whatsapp_logout", "Support", stdout=out)
    number.refresh_from_db()
    assert number.status == "logged_out" and number.jid == ""
    assert "logged out" in out.getvalue()
    with pytest.raises(CommandError, match="No number named"):
        call_command("whatsapp_logout", "Nope")


@pytest.mark.timeout(90)
def test_the_smoke_test_walks_every_step(sim_settings, simulator, alice):
    scanner = _scan_when_shown(simulator, "5511900000001")
    call_command("whatsapp_connect", "Live", owner="alice", timeout=40, stdout=io.StringIO())
    scanner.join(5)
    c = simulator.control

    def play_the_contact() -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(c.sent("5511900000001")) < 2:
            time.sleep(0.1)
        ids = [s["message_id"] for s in c.sent("5511900000001")]
        c.post(
            "/api/receipts",
            {
                "phone": "5511900000001",
                "message_ids": ids,
                "status": "delivered",
                "from": "5511977770001",
            },
        )
        time.sleep(0.5)
        c.send_message(to="5511900000001", **{"from": "5511977770001"}, text="got it")

    contact = threading.Thread(target=play_the_contact, daemon=True)
    contact.start()
    out = io.StringIO()
    call_command(
        "whatsapp_smoketest", "Live", to="+55 11 97777-0001", wait=30, logout=True, stdout=out
    )
    contact.join(5)
    text = out.getvalue()
    assert "FAIL" not in text, text
    for step in [
        "number connected",
        "text and image sent",
        "delivery receipts",
        "reply received",
        "read receipt sent",
        "logged out",
    ]:
        assert f"PASS  {step}" in text
    sent = c.sent("5511900000001")
    assert [s["kind"] for s in sent] == ["text", "image"]
    assert c.get("/api/reads", phone="5511900000001")
