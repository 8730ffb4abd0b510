"""What NeonizeSession hands neonize to send: each kind of message, replies, phone
lookups, and how send errors are classified. The client is a fake connected one."""

from __future__ import annotations

from pathlib import Path

import pytest
from neonize.exc import IsOnWhatsAppError, SendMessageError
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from tests.whatsapp.neonize_helpers import PHONE, WHEN, live_session
from whatsapp.gateway import base
from whatsapp.gateway.neonize.mapping import map_content


@pytest.fixture
def live(tmp_path: Path):
    yield from live_session(tmp_path)


def assert_transient(fn) -> None:
    with pytest.raises(base.GatewayError) as info:
        fn()
    assert info.value.transient is True


def test_send_text(live) -> None:
    session, fake, _ = live
    result = session.send_text(
        base.SendText(to=f"{PHONE}@s.whatsapp.net", text="hello", message_id="3EB0MINE")
    )
    assert result == base.SendResult(message_id="3EB0SERVER", timestamp=WHEN)
    ((name, (to, message), _),) = fake.calls
    assert (to.User, to.Server, to.Device) == (PHONE, "s.whatsapp.net", 0)
    assert message == Message(conversation="hello")


def test_send_text_quoting_a_message(live) -> None:
    session, fake, _ = live
    session.send_text(
        base.SendText(
            to=f"{PHONE}@s.whatsapp.net",
            text="yes, tomorrow",
            message_id="3EB0MINE",
            quoted_id="3EB0THEIRS",
            quoted_sender=f"{PHONE}@s.whatsapp.net",
            quoted_text="can you deliver?",
        )
    )
    ((_name, (_to, message), _),) = fake.calls
    part = message.extendedTextMessage
    assert part.text == "yes, tomorrow"
    assert part.contextInfo.stanzaID == "3EB0THEIRS"
    assert part.contextInfo.participant == f"{PHONE}@s.whatsapp.net"
    assert part.contextInfo.quotedMessage.conversation == "can you deliver?"
    # and it reads back as a reply to that message
    assert map_content(message).quoted_id == "3EB0THEIRS"


def test_send_location_contact_and_sticker(live, tmp_path: Path) -> None:
    session, fake, _ = live
    to = f"{PHONE}@s.whatsapp.net"
    session.handle(
        base.SendLocation(
            to=to,
            message_id="1",
            latitude=-23.55,
            longitude=-46.63,
            name="Sé",
            address="Praça da Sé",
            quoted_id="3EB0THEIRS",
        )
    )
    session.handle(
        base.SendContact(
            to=to, message_id="2", display_name="Ana", vcard="BEGIN:VCARD\nFN:Ana\nEND:VCARD"
        )
    )
    path = tmp_path / "s.webp"
    path.write_bytes(b"RIFF-webp")
    session.handle(
        base.SendMedia(
            to=to,
            kind=base.MessageKind.STICKER,
            path=str(path),
            message_id="3",
            mimetype="image/webp",
        )
    )
    sent = [c[1][1] for c in fake.calls if c[0] == "send_message"]
    location = sent[0].locationMessage
    assert (location.degreesLatitude, location.degreesLongitude) == (-23.55, -46.63)
    assert (location.name, location.address) == ("Sé", "Praça da Sé")
    assert location.contextInfo.stanzaID == "3EB0THEIRS"
    # each reads back as the kind it was sent as
    content = map_content(sent[0])
    assert (content.kind, content.location_name) == (base.MessageKind.LOCATION, "Sé")
    assert sent[1].contactMessage.displayName == "Ana"
    assert map_content(sent[1]).kind == base.MessageKind.CONTACT
    assert ("build_sticker_message", (b"RIFF-webp",), {}) in fake.calls
    assert sent[2].HasField("stickerMessage")


def test_check_phones_answers_each_phone_with_the_jid_whatsapp_gave(live) -> None:
    session, fake, _ = live
    checks = session.handle(base.CheckPhones(phones=("5511988880001", "5511977770000")))
    assert fake.calls[0] == ("is_on_whatsapp", ("+5511988880001", "+5511977770000"), {})
    assert checks == (
        base.PhoneCheck("5511988880001", True, "551188880001@s.whatsapp.net"),
        base.PhoneCheck("5511977770000", False, ""),
    )
    fake.send_error = IsOnWhatsAppError("websocket not connected")
    with pytest.raises(base.GatewayError) as info:
        session.check_phones(base.CheckPhones(phones=("5511988880001",)))
    assert info.value.transient is True


def test_send_media_passes_bytes_never_a_path(live, tmp_path: Path) -> None:
    session, fake, _ = live
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8jpeg-bytes")
    session.send_media(
        base.SendMedia(
            to=PHONE, kind=base.MessageKind.IMAGE, path=str(path), message_id="1", caption="look"
        )
    )
    name, (data,), kwargs = fake.calls[0]
    assert (name, data, kwargs) == (
        "build_image_message",
        b"\xff\xd8jpeg-bytes",
        {"caption": "look"},
    )
    assert fake.calls[1][0] == "send_message"


def test_send_voice_note_and_document(live, tmp_path: Path) -> None:
    session, fake, _ = live
    voice = tmp_path / "note.ogg"
    voice.write_bytes(b"OggS")
    session.send_media(
        base.SendMedia(to=PHONE, kind=base.MessageKind.VOICE, path=str(voice), message_id="1")
    )
    assert fake.calls[0][2] == {"ptt": True}
    sent = fake.calls[1][1][1]
    assert sent.audioMessage.mimetype == "audio/ogg; codecs=opus"

    doc = tmp_path / "invoice.pdf"
    doc.write_bytes(b"%PDF")
    session.send_media(
        base.SendMedia(
            to=PHONE,
            kind=base.MessageKind.DOCUMENT,
            path=str(doc),
            message_id="2",
            mimetype="application/pdf",
        )
    )
    name, (data,), kwargs = fake.calls[2]
    assert (name, data) == ("build_document_message", b"%PDF")
    assert kwargs["filename"] == "invoice.pdf" and kwargs["mimetype"] == "application/pdf"


def test_send_errors_are_classified(live, tmp_path: Path) -> None:
    session, fake, _ = live
    cmd = base.SendText(to=PHONE, text="x", message_id="1")
    fake.send_error = SendMessageError("failed to send: websocket disconnected")
    assert_transient(lambda: session.send_text(cmd))
    fake.send_error = SendMessageError("server returned error 479")
    with pytest.raises(base.GatewayError) as info:
        session.send_text(cmd)
    assert info.value.transient is False
    with pytest.raises(base.GatewayError) as info:
        session.send_media(
            base.SendMedia(
                to=PHONE, kind=base.MessageKind.IMAGE, path=str(tmp_path / "gone"), message_id="1"
            )
        )
    assert info.value.transient is False
