"""The fake WhatsApp network and the gateway session that connects to it: messages in and out.

Every test runs a real simulator (free port, background thread) and real
SimulatorSession objects in this process; events are collected from the
session's own thread and waited for with timeouts. No database, no Django.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.whatsapp.simulator.helpers import (
    CONTACT,
    CONTACT_JID,
    PHONE,
    Device,
    S,
    download,
    inbound,
    wait_until,
)
from whatsapp.gateway import base
from whatsapp.simulator import ControlClient

# --- Inbound messages ------------------------------------------------------


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


# --- Outbound --------------------------------------------------------------


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
