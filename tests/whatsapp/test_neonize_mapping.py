"""Mapping neonize protobuf events to the gateway's dataclasses, with real neonize protobufs.

Nothing here needs Django or the Go core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from neonize.events import HistorySyncEv, ReceiptEv
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContactMessage,
    ContactsArrayMessage,
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    FutureProofMessage,
    GroupInviteMessage,
    ImageMessage,
    LocationMessage,
    Message,
    PollCreationMessage,
    ProtocolMessage,
    ReactionMessage,
    SenderKeyDistributionMessage,
    StickerMessage,
    VideoMessage,
)
from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import (
    Conversation,
    HistorySync,
    HistorySyncMsg,
)
from neonize.proto.waWeb.WAWebProtobufsWeb_pb2 import WebMessageInfo

from tests.whatsapp.neonize_helpers import (
    PHONE,
    TS_MS,
    TS_S,
    WHEN,
    jid,
    message_event,
    receipt_event,
)
from whatsapp.gateway import base
from whatsapp.gateway.neonize.mapping import (
    map_history,
    map_message,
    map_receipt,
    parse_jid,
    to_datetime,
)


def media_ref_message(msg: base.InboundMessage) -> Message:
    assert msg.media_ref is not None
    return Message.FromString(msg.media_ref)


# --- map_message: every kind ------------------------------------------------------


def test_plain_text() -> None:
    msg = map_message(message_event(Message(conversation="hello")))
    assert msg == base.InboundMessage(
        message_id="3EB0AAA111",
        chat=f"{PHONE}@s.whatsapp.net",
        sender=f"{PHONE}@s.whatsapp.net",  # device :3 dropped
        timestamp=WHEN,
        kind=base.MessageKind.TEXT,
        text="hello",
        push_name="Alice",
    )


def test_extended_text_carries_the_quoted_id() -> None:
    ev = message_event(
        Message(
            extendedTextMessage=ExtendedTextMessage(
                text="yes, that one",
                contextInfo=ContextInfo(
                    stanzaID="3EB0QUOTED", participant=f"{PHONE}@s.whatsapp.net"
                ),
            )
        )
    )
    msg = map_message(ev)
    assert msg.kind == base.MessageKind.TEXT
    assert msg.text == "yes, that one"
    assert msg.quoted_id == "3EB0QUOTED"
    assert msg.media_ref is None


def test_image_with_caption_and_media_ref() -> None:
    image = ImageMessage(
        caption="the receipt",
        mimetype="image/jpeg",
        fileLength=48213,
        directPath="/v/t62/abc",
        mediaKey=b"k" * 32,
        contextInfo=ContextInfo(stanzaID="3EB0Q", quotedMessage=Message(conversation="big")),
    )
    msg = map_message(message_event(Message(imageMessage=image)))
    assert msg.kind == base.MessageKind.IMAGE
    assert (msg.text, msg.mimetype, msg.file_size, msg.quoted_id) == (
        "the receipt",
        "image/jpeg",
        48213,
        "3EB0Q",
    )
    ref = media_ref_message(msg)
    # The ref is the inner message download_any needs, without the quote baggage.
    assert ref.imageMessage.directPath == "/v/t62/abc"
    assert ref.imageMessage.mediaKey == b"k" * 32
    assert not ref.imageMessage.HasField("contextInfo")
    assert [f.name for f, _ in ref.ListFields()] == ["imageMessage"]


def test_video() -> None:
    video = VideoMessage(caption="clip", mimetype="video/mp4", fileLength=1_000_000, mediaKey=b"v")
    msg = map_message(message_event(Message(videoMessage=video)))
    assert (msg.kind, msg.text, msg.mimetype, msg.file_size) == (
        base.MessageKind.VIDEO,
        "clip",
        "video/mp4",
        1_000_000,
    )
    assert media_ref_message(msg).videoMessage.mediaKey == b"v"


def test_round_video_note_is_a_downloadable_video() -> None:
    msg = map_message(message_event(Message(ptvMessage=VideoMessage(mimetype="video/mp4"))))
    assert msg.kind == base.MessageKind.VIDEO
    # whatsmeow's DownloadAny knows videoMessage, not ptvMessage.
    assert media_ref_message(msg).HasField("videoMessage")


@pytest.mark.parametrize(
    ("ptt", "kind"), [(False, base.MessageKind.AUDIO), (True, base.MessageKind.VOICE)]
)
def test_audio_and_voice(ptt: bool, kind: base.MessageKind) -> None:
    audio = AudioMessage(mimetype="audio/ogg; codecs=opus", fileLength=5120, PTT=ptt)
    msg = map_message(message_event(Message(audioMessage=audio)))
    assert msg.kind == kind
    assert (msg.mimetype, msg.file_size, msg.text) == ("audio/ogg; codecs=opus", 5120, "")
    assert media_ref_message(msg).audioMessage.PTT is ptt


def test_document_filename_title_and_caption() -> None:
    doc = DocumentMessage(
        fileName="invoice.pdf",
        title="Invoice",
        caption="see attached",
        mimetype="application/pdf",
        fileLength=2048,
    )
    msg = map_message(message_event(Message(documentMessage=doc)))
    assert (msg.kind, msg.filename, msg.text, msg.mimetype, msg.file_size) == (
        base.MessageKind.DOCUMENT,
        "invoice.pdf",
        "see attached",
        "application/pdf",
        2048,
    )
    untitled = DocumentMessage(title="Quarterly report", mimetype="application/pdf")
    msg = map_message(message_event(Message(documentMessage=untitled)))
    assert msg.filename == "Quarterly report"
    assert msg.file_size is None  # unknown, not 0


def test_document_with_caption_wrapper_is_unwrapped() -> None:
    inner = Message(documentMessage=DocumentMessage(fileName="a.txt", caption="cap"))
    wrapped = Message(documentWithCaptionMessage=FutureProofMessage(message=inner))
    msg = map_message(message_event(wrapped))
    assert (msg.kind, msg.filename, msg.text) == (base.MessageKind.DOCUMENT, "a.txt", "cap")
    assert media_ref_message(msg).documentMessage.fileName == "a.txt"


def test_ephemeral_view_once_image_is_unwrapped() -> None:
    inner = Message(imageMessage=ImageMessage(caption="once", mimetype="image/png"))
    view_once = Message(viewOnceMessageV2=FutureProofMessage(message=inner))
    wrapped = Message(ephemeralMessage=FutureProofMessage(message=view_once))
    msg = map_message(message_event(wrapped))
    assert (msg.kind, msg.text) == (base.MessageKind.IMAGE, "once")


def test_sticker() -> None:
    sticker = StickerMessage(mimetype="image/webp", fileLength=900, isAnimated=False)
    msg = map_message(message_event(Message(stickerMessage=sticker)))
    assert (msg.kind, msg.mimetype, msg.file_size, msg.text) == (
        base.MessageKind.STICKER,
        "image/webp",
        900,
        "",
    )
    assert media_ref_message(msg).HasField("stickerMessage")


def test_location() -> None:
    loc = LocationMessage(
        degreesLatitude=-23.5505, degreesLongitude=-46.6333, name="Office", address="Av. Paulista"
    )
    msg = map_message(message_event(Message(locationMessage=loc)))
    assert msg.kind == base.MessageKind.LOCATION
    assert (msg.latitude, msg.longitude) == (-23.5505, -46.6333)
    assert (msg.location_name, msg.text) == ("Office", "Av. Paulista")
    assert msg.media_ref is None


def test_contact_and_contact_array() -> None:
    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL:+5511988887777\nEND:VCARD"
    msg = map_message(
        message_event(Message(contactMessage=ContactMessage(displayName="Bob", vcard=vcard)))
    )
    assert msg.kind == base.MessageKind.CONTACT
    assert msg.text == f"Bob\n{vcard}"

    many = ContactsArrayMessage(
        displayName="2 contacts",
        contacts=[
            ContactMessage(displayName="Bob", vcard="VB"),
            ContactMessage(displayName="Carol", vcard="VC"),
        ],
    )
    msg = map_message(message_event(Message(contactsArrayMessage=many)))
    assert msg.kind == base.MessageKind.CONTACT
    assert msg.text == "Bob\nVB\n\nCarol\nVC"


def test_unmodelled_content_is_other_but_protocol_parts_are_dropped() -> None:
    poll = Message(pollCreationMessage=PollCreationMessage(name="Lunch?"))
    assert map_message(message_event(poll)).kind == base.MessageKind.OTHER
    assert map_message(message_event(poll)).text == "Lunch?"
    invite = Message(groupInviteMessage=GroupInviteMessage(groupName="Team", caption="join us"))
    msg = map_message(message_event(invite))
    assert (msg.kind, msg.text) == (base.MessageKind.OTHER, "join us")

    reaction = Message(reactionMessage=ReactionMessage(text="👍"))
    revoke = Message(protocolMessage=ProtocolMessage(type=ProtocolMessage.REVOKE))
    skdm_only = Message(senderKeyDistributionMessage=SenderKeyDistributionMessage(groupID="g"))
    for silent in (reaction, revoke, skdm_only, Message()):
        assert map_message(message_event(silent)) is None
    # A real message that happens to carry a sender key is still a message.
    both = Message(
        conversation="hi all",
        senderKeyDistributionMessage=SenderKeyDistributionMessage(groupID="g"),
    )
    assert map_message(message_event(both)).text == "hi all"


# --- map_message: addressing and time -------------------------------------------------


def test_lid_sender_with_phone_alt() -> None:
    lid = jid("190000000000001", "lid")
    ev = message_event(
        Message(conversation="hi"),
        chat=lid,
        sender=jid("190000000000001", "lid", device=5),
        sender_alt=jid(PHONE, device=5),
    )
    msg = map_message(ev)
    assert msg.chat == "190000000000001@lid"
    assert msg.sender == "190000000000001@lid"
    assert msg.sender_alt == f"{PHONE}@s.whatsapp.net"
    assert msg.chat_alt == f"{PHONE}@s.whatsapp.net"


def test_group_message_sender_is_the_participant() -> None:
    group = jid("120363025246125486", "g.us")
    ev = message_event(
        Message(conversation="morning"),
        chat=group,
        sender=jid("190000000000002", "lid", device=1),
        sender_alt=jid("5511977776666"),
        is_group=True,
    )
    msg = map_message(ev)
    assert msg.is_group is True
    assert msg.chat == "120363025246125486@g.us"
    assert msg.sender == "190000000000002@lid"
    assert msg.sender_alt == "5511977776666@s.whatsapp.net"
    assert msg.chat_alt == ""  # a group has one address


def test_from_me_message_sent_from_the_phone() -> None:
    ev = message_event(
        Message(conversation="on my way"),
        chat=jid("190000000000003", "lid"),
        sender=jid("5511900000000", device=0),
        recipient_alt=jid("5511955554444"),
        from_me=True,
        push_name="",
    )
    msg = map_message(ev)
    assert msg.from_me is True
    assert msg.sender == "5511900000000@s.whatsapp.net"
    assert msg.chat == "190000000000003@lid"
    assert msg.chat_alt == "5511955554444@s.whatsapp.net"


@pytest.mark.parametrize("timestamp", [TS_MS, TS_S], ids=["milliseconds", "seconds"])
def test_timestamp_in_seconds_or_milliseconds(timestamp: int) -> None:
    msg = map_message(message_event(Message(conversation="x"), timestamp=timestamp))
    assert msg.timestamp == WHEN
    assert msg.timestamp.tzinfo is not None


def test_timestamp_keeps_milliseconds() -> None:
    assert to_datetime(TS_MS + 250) == WHEN + timedelta(milliseconds=250)


# --- receipts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (ReceiptEv.ReceiptType.DELIVERED, "delivered"),
        (ReceiptEv.ReceiptType.READ, "read"),
        (ReceiptEv.ReceiptType.PLAYED, "played"),
    ],
)
def test_receipts(kind: int, status: str) -> None:
    receipt = map_receipt(receipt_event(kind, ("3EB0A", "3EB0B")))
    assert receipt == base.Receipt(
        chat=f"{PHONE}@s.whatsapp.net",
        sender=f"{PHONE}@s.whatsapp.net",
        message_ids=("3EB0A", "3EB0B"),
        status=status,
        timestamp=WHEN,
    )


@pytest.mark.parametrize(
    "kind",
    [
        ReceiptEv.ReceiptType.RETRY,
        ReceiptEv.ReceiptType.SENDER,
        ReceiptEv.ReceiptType.READ_SELF,
        ReceiptEv.ReceiptType.SERVER_ERROR,
    ],
)
def test_other_receipts_are_ignored(kind: int) -> None:
    assert map_receipt(receipt_event(kind)) is None


def test_receipt_without_ids_is_ignored() -> None:
    assert map_receipt(receipt_event(ReceiptEv.ReceiptType.READ, ())) is None


# --- history sync --------------------------------------------------------------------


def web_message(
    msg_id: str, message: Message | None, ts: int, *, from_me: bool = False, participant: str = ""
) -> HistorySyncMsg:
    info = WebMessageInfo(
        key=MessageKey(remoteJID="x", fromMe=from_me, ID=msg_id, participant=participant),
        messageTimestamp=ts,
        pushName="" if from_me else "Alice",
    )
    if message is not None:
        info.message.CopyFrom(message)
    return HistorySyncMsg(message=info)


def test_history_sync_maps_recent_messages_only() -> None:
    now = WHEN
    recent = int((now - timedelta(days=1)).timestamp())
    old = int((now - timedelta(days=30)).timestamp())
    data = HistorySync(
        syncType=HistorySync.RECENT,
        conversations=[
            Conversation(
                ID="190000000000001@lid",
                pnJID=f"{PHONE}@s.whatsapp.net",
                messages=[
                    web_message("H2", Message(conversation="newer"), recent + 60),
                    web_message("H1", Message(conversation="recent"), recent),
                    web_message("H0", Message(conversation="too old"), old),
                    web_message("HS", None, recent),  # a system stub: no content
                    web_message("HM", Message(conversation="mine"), recent + 1, from_me=True),
                ],
            ),
            Conversation(
                ID="120363025246125486@g.us",
                messages=[
                    web_message(
                        "G1",
                        Message(imageMessage=ImageMessage(caption="pic", mimetype="image/jpeg")),
                        recent,
                        participant="5511977776666:4@s.whatsapp.net",
                    )
                ],
            ),
        ],
    )
    ev = HistorySyncEv.FromString(HistorySyncEv(Data=data).SerializeToString())
    batch = map_history(ev, history_days=7, own_jid="5511900000000@s.whatsapp.net", now=now)
    by_id = {m.message_id: m for m in batch.messages}
    assert set(by_id) == {"H1", "H2", "HM", "G1"}
    assert [m.message_id for m in batch.messages][-1] == "H2"  # oldest first
    h1 = by_id["H1"]
    assert (h1.chat, h1.sender, h1.chat_alt, h1.sender_alt) == (
        "190000000000001@lid",
        "190000000000001@lid",
        f"{PHONE}@s.whatsapp.net",
        f"{PHONE}@s.whatsapp.net",
    )
    assert h1.timestamp == datetime.fromtimestamp(recent, UTC)
    assert by_id["HM"].from_me and by_id["HM"].sender == "5511900000000@s.whatsapp.net"
    g1 = by_id["G1"]
    assert g1.is_group and g1.sender == "5511977776666@s.whatsapp.net"
    assert g1.kind == base.MessageKind.IMAGE and g1.media_ref is not None

    assert map_history(ev, history_days=0, now=now) is None
    assert map_history(ev, history_days=7, now=now + timedelta(days=100)) is None


# --- JIDs ------------------------------------------------------------------------------


def test_parse_jid() -> None:
    device = parse_jid("5511999990000:12@s.whatsapp.net", keep_device=True)
    assert (device.User, device.Device, device.Server) == ("5511999990000", 12, "s.whatsapp.net")
    assert parse_jid("5511999990000:12@s.whatsapp.net").Device == 0
    assert parse_jid("+5511999990000").Server == "s.whatsapp.net"
    assert parse_jid("120363025246125486@g.us").Server == "g.us"
    for bad in ("", "55:x@s.whatsapp.net", "5511@"):
        with pytest.raises(ValueError):
            parse_jid(bad)
