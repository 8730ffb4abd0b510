"""The neonize gateway, with real neonize protobuf events and the real Go core offline.

Nothing here needs Django. Tests that let Go touch a device store it might
abort on run in a subprocess, so an abort fails the test instead of pytest.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from neonize._binder import func_callback_bytes, func_string
from neonize.events import (
    ConnectedEv,
    HistorySyncEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
)
from neonize.exc import DownloadError, SendMessageError
from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
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
from neonize.utils.enum import ReceiptType

from whatsapp.gateway import base
from whatsapp.gateway.neonize import NeonizeSession
from whatsapp.gateway.neonize.ffi import FFI_LOCK, RWLock, is_transient
from whatsapp.gateway.neonize.mapping import (
    map_content,
    map_history,
    map_message,
    map_receipt,
    parse_jid,
    to_datetime,
)
from whatsapp.gateway.neonize.store import device_in_store, pg_conninfo

ROOT = Path(__file__).resolve().parents[2]
PHONE = "5511999990001"
TS_MS = 1767225600000  # 2026-01-01T00:00:00Z
TS_S = 1767225600
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


# --- builders -------------------------------------------------------------------


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> JID:
    return JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


EMPTY = JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)


def source(
    *,
    chat: JID | None = None,
    sender: JID | None = None,
    sender_alt: JID = EMPTY,
    recipient_alt: JID = EMPTY,
    from_me: bool = False,
    is_group: bool = False,
) -> MessageSource:
    chat = chat or jid(PHONE)
    return MessageSource(
        Chat=chat,
        Sender=sender or jid(chat.User, chat.Server, device=3),
        IsFromMe=from_me,
        IsGroup=is_group,
        SenderAlt=sender_alt,
        RecipientAlt=recipient_alt,
        BroadcastListOwner=EMPTY,
    )


def message_event(
    message: Message,
    *,
    msg_id: str = "3EB0AAA111",
    timestamp: int = TS_MS,
    push_name: str = "Alice",
    **source_kwargs: Any,
) -> MessageEv:
    ev = MessageEv(
        Info=MessageInfo(
            MessageSource=source(**source_kwargs),
            ID=msg_id,
            ServerID=0,
            Type="text",
            Pushname=push_name,
            Timestamp=timestamp,
            Category="",
            Multicast=False,
            MediaType="",
            Edit="",
        ),
        Message=message,
        IsEphemeral=False,
        IsViewOnce=False,
        IsViewOnceV2=False,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=False,
        UnavailableRequestID="",
        RetryCount=0,
    )
    # proto2: serialising proves every required field is set, as Go's would be.
    return MessageEv.FromString(ev.SerializeToString())


def receipt_event(kind: int, ids: tuple[str, ...] = ("3EB0AAA111",)) -> ReceiptEv:
    ev = ReceiptEv(
        MessageSource=source(sender=jid(PHONE, device=2)),
        MessageIDs=list(ids),
        Timestamp=TS_S,
        Type=kind,
    )
    return ReceiptEv.FromString(ev.SerializeToString())


def media_ref_message(msg: base.InboundMessage) -> Message:
    assert msg.media_ref is not None
    return Message.FromString(msg.media_ref)


def config(tmp_path: Path, **options: str) -> base.SessionConfig:
    return base.SessionConfig(
        account=f"t{uuid.uuid4().hex[:10]}",
        store=str(tmp_path / "wa" / "store.sqlite3"),
        options=dict(options),
    )


class Recorder:
    """An ``emit`` that records (time, thread name, event); optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.items: list[tuple[float, str, base.Event]] = []
        self._cond = threading.Condition()

    def __call__(self, event: base.Event) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._cond:
            self.items.append((time.monotonic(), threading.current_thread().name, event))
            self._cond.notify_all()

    @property
    def events(self) -> list[base.Event]:
        with self._cond:
            return [event for _, _, event in self.items]

    def states(self) -> list[base.ConnState]:
        return [e.state for e in self.events if isinstance(e, base.StateChanged)]

    def wait_for(
        self, pred: Callable[[base.Event], bool], count: int = 1, timeout: float = 5.0
    ) -> list[tuple[float, str, base.Event]]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([i for i in self.items if pred(i[2])]) >= count, timeout
            )
            found = [i for i in self.items if pred(i[2])]
        assert ok, f"wanted {count} matching events, got {[i[2] for i in self.items]}"
        return found


def is_state(state: base.ConnState) -> Callable[[base.Event], bool]:
    return lambda e: isinstance(e, base.StateChanged) and e.state == state


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


# --- helpers ----------------------------------------------------------------------------


def test_parse_jid() -> None:
    device = parse_jid("5511999990000:12@s.whatsapp.net", keep_device=True)
    assert (device.User, device.Device, device.Server) == ("5511999990000", 12, "s.whatsapp.net")
    assert parse_jid("5511999990000:12@s.whatsapp.net").Device == 0
    assert parse_jid("+5511999990000").Server == "s.whatsapp.net"
    assert parse_jid("120363025246125486@g.us").Server == "g.us"
    for bad in ("", "55:x@s.whatsapp.net", "5511@"):
        with pytest.raises(ValueError):
            parse_jid(bad)


def test_device_in_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is False
    assert not path.exists()  # the check never creates a store
    sqlite3.connect(path).close()
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is False  # no table yet
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO whatsmeow_device VALUES ('1:2@s.whatsapp.net')")
    conn.close()
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is True
    assert device_in_store(str(path), "1:3@s.whatsapp.net") is False


def test_pg_conninfo_turns_lib_pq_settings_into_options() -> None:
    dsn = "postgres://wa:pw@db:5432/vbcrm?sslmode=disable&search_path=wa_12"
    assert pg_conninfo(dsn) == (
        "postgres://wa:pw@db:5432/vbcrm?sslmode=disable&options=-c+search_path%3Dwa_12"
    )
    assert pg_conninfo("postgresql://h/db?sslmode=require") == "postgresql://h/db?sslmode=require"


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ("failed to send: websocket not connected", True),
        ("client is nil", True),
        ("context deadline exceeded", True),
        ("download failed with status code 404", False),
        ("invalid JID", False),
        ("server returned error 479", False),
        ("upload failed with status code 503", True),
        ("info query returned status 429: rate-overlimit", True),
        ("failed to get devices of 5511404040404@s.whatsapp.net: timed out", True),
    ],
)
def test_error_classification(text: str, transient: bool) -> None:
    assert is_transient(text) is transient


def test_rwlock_writer_excludes_readers_and_is_not_starved() -> None:
    lock = RWLock()
    assert lock.acquire_read(timeout=0)
    assert lock.acquire_read(timeout=0)  # readers share
    assert not lock.acquire_write(timeout=0.05)  # readers hold it
    got_write = threading.Event()

    def writer() -> None:
        lock.acquire_write()
        got_write.set()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    assert not lock.acquire_read(timeout=0.05)  # a waiting writer blocks new readers
    lock.release_read()
    lock.release_read()
    assert got_write.wait(2)
    assert not lock.acquire_read(timeout=0.05)
    lock.release_write()
    assert lock.acquire_read(timeout=0)
    lock.release_read()
    thread.join()


# --- the session: the real Go -> Python callback path --------------------------------


def call_event(client: Any, ev: Any, code: int) -> None:
    """What Go does: call the ctypes callback with a pointer to the serialised event."""
    data = ev.SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data))
    func_callback_bytes(client.event.execute)(client.uuid, ctypes.addressof(buf), len(data), code)


def call_string(fn: Callable[..., None], text: str) -> None:
    buf = ctypes.create_string_buffer(text.encode())
    func_string(fn)(None, ctypes.addressof(buf))


@pytest.fixture
def wired(tmp_path: Path):
    """A session with its dispatcher and a client wired to it, never connected."""
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    client = session._build_client(None)
    yield session, client, recorder
    session.stop(timeout=5)


def test_go_callback_delivers_a_mapped_message_on_the_dispatcher(wired) -> None:
    session, client, recorder = wired
    image = ImageMessage(caption="cap", mimetype="image/jpeg", directPath="/v/x", mediaKey=b"k")
    call_event(client, message_event(Message(imageMessage=image)), 17)
    call_event(client, receipt_event(ReceiptEv.ReceiptType.READ), 18)
    ((_, thread, msg),) = recorder.wait_for(lambda e: isinstance(e, base.InboundMessage))
    assert (msg.kind, msg.text, msg.message_id) == (base.MessageKind.IMAGE, "cap", "3EB0AAA111")
    assert thread.startswith("neonize-dispatch-")
    ((_, _, receipt),) = recorder.wait_for(lambda e: isinstance(e, base.Receipt))
    assert receipt.status == "read"
    # A reaction reaches the session but is not an inbox message.
    call_event(client, message_event(Message(reactionMessage=ReactionMessage(text="x"))), 17)
    call_event(client, message_event(Message(conversation="after"), msg_id="3EB0B"), 17)
    recorder.wait_for(lambda e: isinstance(e, base.InboundMessage), count=2)
    inbound = [e for e in recorder.events if isinstance(e, base.InboundMessage)]
    assert [m.message_id for m in inbound] == ["3EB0AAA111", "3EB0B"]


def test_slow_emit_does_not_stall_go(tmp_path: Path) -> None:
    recorder = Recorder(delay=0.2)
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    client = session._build_client(None)
    started = time.monotonic()
    for i in range(5):
        call_event(client, message_event(Message(conversation=str(i)), msg_id=f"M{i}"), 17)
    assert time.monotonic() - started < 0.15  # Go's thread only enqueued
    recorder.wait_for(lambda e: isinstance(e, base.InboundMessage), count=5)
    assert [e.text for e in recorder.events] == ["0", "1", "2", "3", "4"]
    session.stop(timeout=5)


def test_qr_codes_then_pair_success(wired) -> None:
    session, client, recorder = wired
    call_string(client._NewClient__onQr, "2@first-code")
    call_string(client._NewClient__onQr, "2@second-code")
    recorder.wait_for(lambda e: isinstance(e, base.QRCode), count=2)
    assert recorder.events == [
        base.StateChanged(base.ConnState.WAITING_QR),
        base.QRCode("2@first-code"),
        base.QRCode("2@second-code"),
    ]
    assert session._qr_seen

    paired = PairStatusEv(
        ID=jid("5511900000000", device=12),
        BusinessName="",
        Platform="android",
        Status=PairStatusEv.PStatus.SUCCESS,
    )
    call_event(client, paired, 2)
    ((_, _, event),) = recorder.wait_for(lambda e: isinstance(e, base.Paired))
    assert event == base.Paired(
        jid="5511900000000:12@s.whatsapp.net", phone="5511900000000", push_name=""
    )
    # The next connect must resume this device instead of pairing another one.
    assert client.new_device is False
    assert (client.jid.User, client.jid.Device) == ("5511900000000", 12)

    call_event(client, ConnectedEv(status=True), 3)
    recorder.wait_for(is_state(base.ConnState.CONNECTED))
    # Go has no such client (connect() never ran): is_connected must not ask it.
    assert session.is_connected() is False


def test_qr_timeout_expires_pairing_and_stops(wired) -> None:
    session, client, recorder = wired
    call_string(client._NewClient__onQr, "2@code")
    call_string(client._NewClient__onLoginStatus, "timeout")
    recorder.wait_for(is_state(base.ConnState.STOPPED))
    assert recorder.states() == [
        base.ConnState.WAITING_QR,
        base.ConnState.PAIRING_EXPIRED,
        base.ConnState.STOPPED,
    ]


def test_logged_out_event_reports_and_stops(wired) -> None:
    session, client, recorder = wired
    call_event(client, LoggedOutEv(OnConnect=True, Reason=2), 6)
    recorder.wait_for(is_state(base.ConnState.STOPPED))
    assert recorder.states() == [base.ConnState.LOGGED_OUT, base.ConnState.STOPPED]
    assert "LOGGED_OUT" in recorder.events[0].detail
    # Nothing follows STOPPED, even if Go still calls back.
    call_event(client, message_event(Message(conversation="late")), 17)
    time.sleep(0.1)
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)


# --- commands ------------------------------------------------------------------------


def assert_transient(fn: Callable[[], object]) -> None:
    with pytest.raises(base.GatewayError) as info:
        fn()
    assert info.value.transient is True


def test_commands_when_not_connected_raise_transient_errors(tmp_path: Path) -> None:
    media = tmp_path / "a.jpg"
    media.write_bytes(b"\xff\xd8")
    session = NeonizeSession(config(tmp_path), Recorder())
    assert session.is_connected() is False
    assert_transient(lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="1")))
    assert_transient(
        lambda: session.send_media(
            base.SendMedia(to=PHONE, kind=base.MessageKind.IMAGE, path=str(media), message_id="1")
        )
    )
    ref = Message(imageMessage=ImageMessage(directPath="/x")).SerializeToString()
    assert_transient(lambda: session.download_media(base.DownloadMedia(ref, str(tmp_path / "o"))))
    assert_transient(lambda: session.mark_read(base.MarkRead(PHONE, PHONE, ("1",))))
    assert_transient(lambda: session.request_pair_code("+55 11 99999-0001"))
    assert_transient(session.logout)
    # Through the child's command dispatcher too.
    with pytest.raises(base.GatewayError) as info:
        session.handle(base.SendText(to=PHONE, text="x", message_id="1"))
    assert info.value.transient is True


class FakeClient:
    """Stands in for a connected NewClient, to check what the session hands neonize."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.send_error: Exception | None = None
        self.download_error: Exception | None = None
        self.send_gate: threading.Event | None = None
        self.stop_gate: threading.Event | None = None
        self.is_connected = True

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def send_message(self, to: JID, message: Message) -> SimpleNamespace:
        self._record("send_message", to, message)
        if self.send_gate is not None:
            self.send_gate.wait(5)
        if self.send_error:
            raise self.send_error
        return SimpleNamespace(ID="3EB0SERVER", Timestamp=TS_S)

    def build_image_message(self, data: bytes, caption: str | None = None) -> Message:
        self._record("build_image_message", data, caption=caption)
        return Message(imageMessage=ImageMessage(caption=caption))

    def build_audio_message(self, data: bytes, ptt: bool = False) -> Message:
        self._record("build_audio_message", data, ptt=ptt)
        return Message(audioMessage=AudioMessage(mimetype="audio/ogg", PTT=ptt))

    def build_document_message(self, data: bytes, **kwargs: Any) -> Message:
        self._record("build_document_message", data, **kwargs)
        return Message(documentMessage=DocumentMessage(fileName=kwargs["filename"]))

    def download_any(self, message: Message) -> bytes:
        self._record("download_any", message)
        if self.download_error:
            raise self.download_error
        return b"media-bytes"

    def mark_read(self, *ids: str, chat: JID, sender: JID, receipt: ReceiptType) -> None:
        self._record("mark_read", *ids, chat=chat, sender=sender, receipt=receipt)

    def PairPhone(self, phone: str, show_push_notification: bool) -> str:  # noqa: N802
        self._record("PairPhone", phone)
        return "ABCD-EFGH"

    def stop(self) -> None:
        self._record("stop")
        if self.stop_gate is not None:
            self.stop_gate.wait(5)


@pytest.fixture
def live(tmp_path: Path):
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    fake = FakeClient()
    session._client = fake  # type: ignore[assignment]
    session._in_connect = True
    session._connected = True
    yield session, fake, recorder
    session.stop(timeout=5)


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


def test_download_writes_the_file(live, tmp_path: Path) -> None:
    session, fake, _ = live
    image = ImageMessage(directPath="/v/x", mediaKey=b"k")
    ref = Message(imageMessage=image).SerializeToString()
    dest = tmp_path / "media" / "1" / "photo.jpg"
    result = session.download_media(base.DownloadMedia(media_ref=ref, dest=str(dest)))
    assert result == base.DownloadResult(path=str(dest), size=len(b"media-bytes"))
    assert dest.read_bytes() == b"media-bytes"
    assert fake.calls[0][1][0].imageMessage.directPath == "/v/x"

    fake.download_error = DownloadError("download failed with status code 404")
    with pytest.raises(base.GatewayError) as info:
        session.download_media(base.DownloadMedia(media_ref=ref, dest=str(dest)))
    assert info.value.transient is False
    fake.download_error = DownloadError("context deadline exceeded")
    assert_transient(lambda: session.download_media(base.DownloadMedia(ref, str(dest))))


def test_mark_read_and_pair_code(live) -> None:
    session, fake, recorder = live
    session.mark_read(
        base.MarkRead(
            chat="120363025246125486@g.us",
            sender="190000000000002@lid",
            message_ids=("A", "B"),
        )
    )
    name, ids, kwargs = fake.calls[0]
    assert (name, ids, kwargs["receipt"]) == ("mark_read", ("A", "B"), ReceiptType.READ)
    assert (kwargs["chat"].Server, kwargs["sender"].Server) == ("g.us", "lid")

    with pytest.raises(base.GatewayError, match="no QR"):
        session.request_pair_code("+55 11 99999-0001")
    session._qr_seen = True
    assert session.request_pair_code("+55 11 99999-0001") == "ABCD-EFGH"
    assert fake.calls[-1] == ("PairPhone", ("5511999990001",), {})
    recorder.wait_for(is_state(base.ConnState.PAIRING))


def test_stop_waits_for_an_ffi_call_in_flight(live) -> None:
    session, fake, recorder = live
    fake.send_gate = threading.Event()
    sender = threading.Thread(
        target=lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="1"))
    )
    sender.start()
    time.sleep(0.05)
    stopper = threading.Thread(target=session.stop)
    stopper.start()
    time.sleep(0.1)
    # stop() needs the exclusive lock: it must not tear the client down mid-send.
    assert [c[0] for c in fake.calls] == ["send_message"]
    fake.send_gate.set()
    sender.join(2)
    stopper.join(5)
    assert [c[0] for c in fake.calls] == ["send_message", "stop"]
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
    assert_transient(lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="2")))


def test_stop_honours_its_timeout_when_go_is_slow_to_stop(live) -> None:
    session, fake, recorder = live
    fake.stop_gate = threading.Event()
    try:
        started = time.monotonic()
        session.stop(timeout=0.5)
        assert time.monotonic() - started < 1.5
        assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
        # Go is still inside Stop: the exclusive lock stays taken until it returns.
        assert not FFI_LOCK.acquire_read(timeout=0)
    finally:
        fake.stop_gate.set()
    assert FFI_LOCK.acquire_read(timeout=2)
    FFI_LOCK.release_read()


# --- offline, with the real Go core ---------------------------------------------------


def test_connect_retries_with_growing_backoff_and_stops_fast(tmp_path: Path) -> None:
    recorder = Recorder()
    cfg = config(tmp_path, retry_initial="0.2")
    session = NeonizeSession(cfg, recorder)
    session.start()
    try:
        found = recorder.wait_for(is_state(base.ConnState.DISCONNECTED), count=3, timeout=10)
        # No route to WhatsApp: each connect fails and says why.
        assert all("web.whatsapp.com" in e.detail for _, _, e in found)
        first_gap = found[1][0] - found[0][0]
        second_gap = found[2][0] - found[1][0]
        assert first_gap >= 0.2
        assert second_gap >= 0.4
        assert session.retry_waits[1] > session.retry_waits[0]
        assert session.is_connected() is False
        assert_transient(lambda: session.send_text(base.SendText(PHONE, "x", "1")))
        # Go really ran: it created the SQLite store with whatsmeow's tables.
        with sqlite3.connect(cfg.store) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
        assert "whatsmeow_device" in tables
    finally:
        started = time.monotonic()
        session.stop(timeout=5)
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert recorder.states()[0] == base.ConnState.STARTING
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)


def test_stop_interrupts_a_long_backoff(tmp_path: Path) -> None:
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path, retry_initial="60"), recorder)
    session.start()
    recorder.wait_for(is_state(base.ConnState.DISCONNECTED), timeout=10)
    started = time.monotonic()
    session.stop(timeout=5)
    assert time.monotonic() - started < 1.0  # not the 60 s backoff
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
    session.stop(timeout=1)  # idempotent: no second STOPPED
    assert recorder.states().count(base.ConnState.STOPPED) == 1


# A child interpreter, because the failure this guards against is a Go abort
# (rc 134) that would take pytest down with it.
CHILD = r"""
import json, logging, os, sqlite3, sys, time
root = logging.getLogger()
from whatsapp.gateway import base
from whatsapp.gateway import neonize as gw
out = {
    "root_handlers": len(root.handlers),
    "root_level": root.level,
    "neonize_level": logging.getLogger("neonize").getEffectiveLevel(),
}
store = sys.argv[1]

def run(device_jid, until):
    events = []
    session = gw.NeonizeSession(
        base.SessionConfig(account="child", store=store, device_jid=device_jid,
                           options={"retry_initial": "30"}),
        events.append,
    )
    session.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        isinstance(e, base.StateChanged) and e.state == until for e in events
    ):
        time.sleep(0.02)
    session.stop(timeout=5)
    return [[e.state.value, e.detail] for e in events if isinstance(e, base.StateChanged)]

# 1. A new device: creates the store, connect fails offline.
out["pairing"] = run("", base.ConnState.DISCONNECTED)
# 2. A device the store does not have: whatsmeow would abort; we must not.
out["unknown"] = run("5511000000000:7@s.whatsapp.net", base.ConnState.STOPPED)
# 3. A device the store has (fake keys of the right sizes): Go gets to connect.
r = os.urandom
with sqlite3.connect(store) as db:
    db.execute(
        "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
        " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
        " adv_account_sig, adv_account_sig_key, adv_device_sig)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        ("5511000000000:8@s.whatsapp.net", 1, r(32), r(32), r(32), 1, r(64), r(32), b"x",
         r(64), r(32), r(64)),
    )
out["known"] = run("5511000000000:8@s.whatsapp.net", base.ConnState.DISCONNECTED)
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def child_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("child") / "store.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(store)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"child died rc={proc.returncode}\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_unknown_device_is_logged_out_without_crashing(child_run: dict[str, Any]) -> None:
    assert child_run["unknown"] == [
        ["starting", ""],
        ["logged_out", "device not found in store"],
        ["stopped", ""],
    ]


def test_stored_device_is_resumed(child_run: dict[str, Any]) -> None:
    states = [s for s, _ in child_run["known"]]
    assert states[:2] == ["starting", "disconnected"]
    assert "web.whatsapp.com" in child_run["known"][1][1]  # it dialled: the device loaded
    assert states[-1] == "stopped" and "logged_out" not in states
    assert [s for s, _ in child_run["pairing"]] == ["starting", "disconnected", "stopped"]


def test_importing_neonize_leaves_root_logging_alone(child_run: dict[str, Any]) -> None:
    assert child_run["root_handlers"] == 0
    assert child_run["root_level"] == 30  # WARNING, Python's default; neonize sets INFO
    assert child_run["neonize_level"] == 30
