"""The fake WhatsApp network and the gateway session that connects to it.

Every test runs a real simulator (free port, background thread) and real
SimulatorSession objects in this process; events are collected from the
session's own thread and waited for with timeouts. No database, no Django.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from whatsapp.gateway import base
from whatsapp.gateway.simulator import SimulatorSession
from whatsapp.simulator import ControlClient, ControlError, SimulatorServer, run_in_thread
from whatsapp.simulator.server import PAIR_CODE_ALPHABET

S = base.ConnState
PHONE = "5511999990001"
CONTACT = "5511988887777"
CONTACT_JID = f"{CONTACT}@s.whatsapp.net"
ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A thread-safe ``emit`` that tests can wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[base.Event] = []

    def __call__(self, event: base.Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_for(
        self, match: type | Callable[[Any], bool], *, since: int = 0, timeout: float = 5.0
    ) -> Any:
        def test(event: Any) -> bool:
            return isinstance(event, match) if isinstance(match, type) else match(event)

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[since:]:
                    if test(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event in {timeout} s; got {self.events}")
                self._cond.wait(left)

    def wait_state(self, state: base.ConnState, *, since: int = 0, timeout: float = 5.0) -> Any:
        return self.wait_for(
            lambda e: isinstance(e, base.StateChanged) and e.state is state,
            since=since,
            timeout=timeout,
        )

    def wait_count(self, kind: type, count: int, *, since: int = 0, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events[since:] if isinstance(e, kind)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)}/{count} {kind.__name__} in {timeout} s")
                self._cond.wait(left)

    def of(self, kind: type) -> list:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[base.ConnState]:
        return [e.state for e in self.of(base.StateChanged)]


class Device:
    def __init__(self, session: SimulatorSession, events: Recorder) -> None:
        self.session = session
        self.events = events


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


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def post_error(api: ControlClient, path: str, body: Any) -> ControlError:
    with pytest.raises(ControlError) as caught:
        api.post(path, body)
    return caught.value


def inbound(api: ControlClient, device: Device, **message: Any) -> base.InboundMessage:
    since = device.events.mark()
    message_id = api.send_message(**{"to": PHONE, "from": CONTACT, **message})
    return device.events.wait_for(
        lambda e: isinstance(e, base.InboundMessage) and e.message_id == message_id, since=since
    )


def download(device: Device, message: base.InboundMessage, dest: Path) -> bytes:
    assert message.media_ref is not None
    result = device.session.download_media(base.DownloadMedia(message.media_ref, str(dest)))
    assert result == base.DownloadResult(path=str(dest), size=dest.stat().st_size)
    return dest.read_bytes()


# --- Pairing -----------------------------------------------------------------


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


def link_by_qr(api: ControlClient, device: Device, account: str) -> str:
    device.events.wait_for(base.QRCode)
    answer = api.post("/api/qr/scan", {"account": account, "phone": PHONE})
    device.events.wait_state(S.CONNECTED)
    return answer["jid"]


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


# --- Inbound messages --------------------------------------------------------


def test_text_message_fields(api: ControlClient, linked: Device) -> None:
    message = inbound(
        api,
        linked,
        text="Olá, tudo bem?",
        push_name="Maria",
        message_id="3AABCDEF0123456789AB",
        timestamp="2026-01-02T03:04:05Z",
        quoted_id="3EB0QUOTED",
    )
    assert message == base.InboundMessage(
        message_id="3AABCDEF0123456789AB",
        chat=CONTACT_JID,
        sender=CONTACT_JID,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        kind=base.MessageKind.TEXT,
        text="Olá, tudo bem?",
        push_name="Maria",
        quoted_id="3EB0QUOTED",
    )
    assert inbound(api, linked, text="x", timestamp=1767225600).timestamp == datetime(
        2026, 1, 1, tzinfo=UTC
    )


@pytest.mark.parametrize("kind", ["image", "video", "audio", "voice", "document", "sticker"])
def test_media_message_downloads_the_exact_bytes(
    api: ControlClient, linked: Device, tmp_path: Path, kind: str
) -> None:
    data = os.urandom(3000) + b"\x00\xff"
    message = inbound(
        api,
        linked,
        kind=kind,
        text="the caption",
        media_base64=base64.b64encode(data).decode(),
        mimetype="application/x-test",
        filename="report.bin",
    )
    assert message.kind is base.MessageKind(kind)
    assert (message.text, message.mimetype, message.filename) == (
        "the caption",
        "application/x-test",
        "report.bin",
    )
    assert message.file_size == len(data)
    assert download(linked, message, tmp_path / "sub" / "file") == data


@pytest.mark.parametrize(
    ("kind", "mimetype", "magic"),
    [
        ("image", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("sticker", "image/webp", b"RIFF"),
        ("video", "video/mp4", b"\x00\x00\x00\x1cftyp"),
        ("audio", "audio/wav", b"RIFF"),
        ("voice", "audio/ogg; codecs=opus", b"OggS"),
        ("document", "application/pdf", b"%PDF-"),
    ],
)
def test_media_without_bytes_gets_a_real_sample(
    api: ControlClient, linked: Device, tmp_path: Path, kind: str, mimetype: str, magic: bytes
) -> None:
    message = inbound(api, linked, kind=kind)
    assert message.mimetype == mimetype
    data = download(linked, message, tmp_path / "sample")
    assert data.startswith(magic) and len(data) == message.file_size
    if kind == "document":
        assert message.filename == "document.pdf" and data.rstrip().endswith(b"%%EOF")


def test_location_and_contact_messages(api: ControlClient, linked: Device) -> None:
    location = inbound(
        api, linked, kind="location", latitude=-23.5, longitude=-46.6, location_name="Paulista"
    )
    assert location.kind is base.MessageKind.LOCATION
    assert (location.latitude, location.longitude, location.location_name) == (
        -23.5,
        -46.6,
        "Paulista",
    )
    assert location.media_ref is None
    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:João\nTEL:+5511912345678\nEND:VCARD"
    contact = inbound(api, linked, kind="contact", vcard=vcard, display_name="João")
    assert (contact.kind, contact.text) == (base.MessageKind.CONTACT, vcard)
    generated = inbound(api, linked, kind="contact", display_name="Ana")
    assert "FN:Ana" in generated.text


def test_group_message(api: ControlClient, linked: Device) -> None:
    message = inbound(
        api, linked, text="oi grupo", group={"jid": "120363012345678901@g.us"}, push_name="Bia"
    )
    assert message.is_group
    assert message.chat == "120363012345678901@g.us"
    assert message.sender == CONTACT_JID
    assert message.push_name == "Bia"


def test_lid_sender_with_phone_alternative(api: ControlClient, linked: Device) -> None:
    message = inbound(api, linked, lid="123456789012345@lid", text="via lid")
    assert (message.sender, message.chat, message.sender_alt, message.chat_alt) == (
        "123456789012345@lid",
        "123456789012345@lid",
        CONTACT_JID,
        CONTACT_JID,
    )
    no_alt = inbound(api, linked, **{"from": None}, lid="99@lid", text="no phone")
    assert (no_alt.sender, no_alt.sender_alt) == ("99@lid", "")


def test_replay_delivers_the_same_message_again(api: ControlClient, linked: Device) -> None:
    first = inbound(api, linked, text="once", kind="text")
    since = linked.events.mark()
    api.post("/api/replay", {"phone": PHONE, "message_id": first.message_id})
    again = linked.events.wait_for(base.InboundMessage, since=since)
    assert again == first


def test_history_batch(api: ControlClient, linked: Device) -> None:
    answer = api.post(
        "/api/history",
        {
            "phone": PHONE,
            "messages": [
                {"from": CONTACT, "text": "old question", "timestamp": 1767225600},
                {"from": CONTACT, "text": "old answer", "from_me": True},
                {"from": CONTACT, "kind": "image"},
            ],
        },
    )
    assert answer == {"count": 3}
    batch = linked.events.wait_for(base.HistoryBatch)
    question, reply, image = batch.messages
    assert question.text == "old question" and not question.from_me
    assert question.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert reply.from_me and reply.sender == f"{PHONE}@s.whatsapp.net"
    assert reply.chat == CONTACT_JID
    assert image.kind is base.MessageKind.IMAGE and image.media_ref
    assert not linked.events.of(base.InboundMessage), "history is not live traffic"


def test_a_burst_arrives_in_order_exactly_once(api: ControlClient, linked: Device) -> None:
    bodies = [{"to": PHONE, "from": CONTACT, "text": f"m{i}"} for i in range(2000)]
    ids = api.post("/api/messages", bodies)["message_ids"]
    received = linked.events.wait_count(base.InboundMessage, 2000, timeout=15)
    assert [m.message_id for m in received] == ids
    assert [m.text for m in received] == [f"m{i}" for i in range(2000)]
    # The device acknowledged them all: nothing is kept for redelivery.
    wait_until(lambda: api.get("/api/numbers")[0]["queued"] == 0)


def test_a_drop_in_the_middle_of_a_burst_loses_and_repeats_nothing(
    api: ControlClient, linked: Device
) -> None:
    since = linked.events.mark()
    bodies = [{"to": PHONE, "from": CONTACT, "text": f"m{i}"} for i in range(3000)]
    ids = api.post("/api/messages", bodies)["message_ids"]
    api.post("/api/drop", {"phone": PHONE})
    ids += api.post("/api/messages", bodies[:500])["message_ids"]
    linked.events.wait_state(S.CONNECTED, since=since)
    linked.events.wait_count(base.InboundMessage, 3500, timeout=15)
    wait_until(lambda: api.get("/api/numbers")[0]["queued"] == 0)
    assert [m.message_id for m in linked.events.of(base.InboundMessage)] == ids


# --- Outbound ----------------------------------------------------------------


def test_send_text_is_recorded_once_per_message_id(api: ControlClient, linked: Device) -> None:
    cmd = base.SendText(to=CONTACT_JID, text="Bom dia!", message_id="3EB0AAA", quoted_id="Q9")
    result = linked.session.send_text(cmd)
    assert result.message_id == "3EB0AAA"
    assert abs(result.timestamp - datetime.now(UTC)).total_seconds() < 5
    assert linked.session.send_text(cmd) == result, "a retried send returns the same result"
    sent = api.sent(PHONE)
    assert len(sent) == 1
    assert {k: sent[0][k] for k in ("message_id", "to", "kind", "text", "quoted_id")} == {
        "message_id": "3EB0AAA",
        "to": CONTACT_JID,
        "kind": "text",
        "text": "Bom dia!",
        "quoted_id": "Q9",
    }


def test_send_media_uploads_the_file(api: ControlClient, linked: Device, tmp_path: Path) -> None:
    path = tmp_path / "contrato.pdf"
    data = os.urandom(5000)
    path.write_bytes(data)
    cmd = base.SendMedia(
        to=CONTACT_JID,
        kind=base.MessageKind.DOCUMENT,
        path=str(path),
        message_id="3EB0DOC",
        caption="segue",
    )
    assert linked.session.send_media(cmd).message_id == "3EB0DOC"
    linked.session.send_media(cmd)
    (sent,) = api.sent(PHONE)
    assert sent["sha256"] == hashlib.sha256(data).hexdigest()
    assert (sent["kind"], sent["text"], sent["filename"], sent["mimetype"], sent["size"]) == (
        "document",
        "segue",
        "contrato.pdf",
        "application/pdf",
        5000,
    )
    assert api.get_bytes("/api/sent/3EB0DOC/media") == data
    missing = base.SendMedia(CONTACT_JID, base.MessageKind.IMAGE, str(tmp_path / "no"), "X")
    with pytest.raises(base.GatewayError):
        linked.session.send_media(missing)


def test_receipts_reach_the_device(api: ControlClient, linked: Device) -> None:
    linked.session.send_text(base.SendText(to=CONTACT_JID, text="a", message_id="M1"))
    linked.session.send_text(base.SendText(to=CONTACT_JID, text="b", message_id="M2"))
    api.post("/api/receipts", {"phone": PHONE, "message_ids": ["M1", "M2"], "status": "read"})
    receipt = linked.events.wait_for(base.Receipt)
    assert (receipt.chat, receipt.sender, receipt.message_ids, receipt.status) == (
        CONTACT_JID,
        CONTACT_JID,
        ("M1", "M2"),
        "read",
    )
    group = "120363000000000001@g.us"
    linked.session.send_text(base.SendText(to=group, text="c", message_id="G1"))
    since = linked.events.mark()
    body = {"phone": PHONE, "message_ids": ["G1"], "status": "delivered", "from": CONTACT}
    api.post("/api/receipts", body)
    receipt = linked.events.wait_for(base.Receipt, since=since)
    assert (receipt.chat, receipt.sender, receipt.status) == (group, CONTACT_JID, "delivered")


def test_mark_read_is_recorded(api: ControlClient, linked: Device) -> None:
    linked.session.mark_read(
        base.MarkRead(chat=CONTACT_JID, sender=CONTACT_JID, message_ids=("A", "B"))
    )
    (read,) = api.get("/api/reads", phone=PHONE)
    assert (read["chat"], read["sender"], read["message_ids"]) == (
        CONTACT_JID,
        CONTACT_JID,
        ["A", "B"],
    )


# --- Connection life ---------------------------------------------------------


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


# --- Control API input -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "poll", "text": "x"}, "kind"),
        ("/api/messages", {"to": PHONE, "from": CONTACT}, "text"),
        ("/api/messages", {"to": PHONE, "text": "who?"}, "from"),
        ("/api/messages", {"to": "5511000000000", "from": CONTACT, "text": "x"}, "unknown number"),
        ("/api/messages", {"from": CONTACT, "text": "x"}, "to"),
        ("/api/messages", {"to": PHONE, "from": "abc", "text": "x"}, "from"),
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "location"}, "latitude"),
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "contact"}, "vcard"),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "kind": "image", "media_base64": "%%"},
            "base64",
        ),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "text": "x", "group": {"jid": "1@s.whatsapp.net"}},
            "g.us",
        ),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "text": "x", "timestamp": "yesterday"},
            "timestamp",
        ),
        (
            "/api/messages",
            [{"to": PHONE, "from": CONTACT, "text": "ok"}, {"to": PHONE}],
            "message 1",
        ),
        ("/api/messages", "not an object", "JSON object"),
        ("/api/receipts", {"phone": PHONE, "message_ids": ["A"], "status": "seen"}, "status"),
        ("/api/receipts", {"phone": PHONE, "message_ids": [], "status": "read"}, "message_ids"),
        ("/api/qr/scan", {"phone": PHONE}, "code"),
        ("/api/qr/scan", {"code": "2@nope"}, "phone"),
        ("/api/drop", {"phone": "5511000000000"}, "unknown number"),
        ("/api/logout", {}, "phone"),
        ("/api/replay", {"phone": PHONE, "message_id": "NEVER"}, "NEVER"),
        ("/api/history", {"phone": PHONE, "messages": [{"from": CONTACT, "kind": "nope"}]}, "kind"),
        ("/api/history", {"phone": PHONE}, "messages"),
    ],
)
def test_bad_input_is_a_400_with_an_error(
    api: ControlClient, linked: Device, path: str, body: Any, error: str
) -> None:
    caught = post_error(api, path, body)
    assert caught.status == 400
    assert error in caught.error
    # Nothing of a rejected request (or batch) reaches the device: the next
    # message is the first one it sees.
    good = inbound(api, linked, text="after")
    assert linked.events.of(base.InboundMessage) == [good]


def test_bad_json_and_unknown_endpoints(api: ControlClient) -> None:
    raw = urllib.request.Request(api.url + "/api/messages", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        api._opener.open(raw, timeout=5)
    assert caught.value.code == 400
    assert b"not valid JSON" in caught.value.read()
    with pytest.raises(ControlError) as missing:
        api.get("/api/nothing-here")
    assert missing.value.status == 404 and missing.value.error
    with pytest.raises(ControlError) as no_phone:
        api.get("/api/sent")
    assert no_phone.value.status == 400


# --- Running it --------------------------------------------------------------


def test_the_command_documents_its_options() -> None:
    from whatsapp.management.commands.whatsapp_simulator import Command

    parser = Command().create_parser("manage.py", "whatsapp_simulator")
    text = " ".join(parser.format_help().split())
    for option in ("--host", "--port", "--qr-interval", "--qr-rotations", "control API"):
        assert option in text
    args = parser.parse_args(["--port", "7072", "--qr-interval", "0.5", "--qr-rotations", "2"])
    assert (args.host, args.port, args.qr_interval, args.qr_rotations) == (
        "127.0.0.1",
        7072,
        0.5,
        2,
    )


def test_standalone_server_shuts_down_cleanly_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "whatsapp.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            assert ControlClient(url).get("/api/health") == {"ok": True}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()
