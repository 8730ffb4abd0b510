"""Pure mapping of neonize protobuf events to the dataclasses of :mod:`whatsapp.gateway.base`.

No I/O and no Go calls: every function here takes a protobuf and returns data.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from whatsapp.gateway import base
from whatsapp.gateway.neonize._lib import (
    JID,
    ClientOutdatedEv,
    ConnectFailureEv,
    ConnectFailureReason,
    GroupInfo,
    GroupInfoEv,
    HistorySyncEv,
    JoinedGroupEv,
    LoggedOutEv,
    Message,
    MessageEv,
    PictureEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)

PHONE_SERVER = "s.whatsapp.net"

# Timestamps above this are milliseconds: as seconds it would be year 5138, as
# milliseconds it is 1973. docs/NEONIZE.md measured ms for messages, s for receipts.
_MS_THRESHOLD = 100_000_000_000


def to_datetime(value: int) -> datetime:
    """A WhatsApp timestamp (seconds or milliseconds) as an aware UTC datetime.

    A missing timestamp (0) becomes "now" rather than 1970, so the message still
    sorts where it arrived.
    """
    if value <= 0:
        return datetime.now(UTC)
    if value >= _MS_THRESHOLD:
        return datetime.fromtimestamp(value // 1000, UTC) + timedelta(milliseconds=value % 1000)
    return datetime.fromtimestamp(value, UTC)


def jid_to_str(jid: JID | None) -> str:
    """A neonize JID as a non-AD string (``user@server``, no device or agent); "" if empty."""
    if jid is None or jid.IsEmpty or (not jid.User and not jid.Server):
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def strip_device(jid: str) -> str:
    """``5511.0:12@s.whatsapp.net`` -> ``5511@s.whatsapp.net`` (string form of JIDToNonAD)."""
    if "@" not in jid:
        return jid
    user, server = jid.rsplit("@", 1)
    return f"{base.jid_user(user)}@{server}" if user else server


def parse_jid(value: str, *, keep_device: bool = False) -> JID:
    """A JID string (``user[.agent][:device]@server``, or a bare phone number) as a neonize JID.

    Raises ValueError on a malformed value.
    """
    value = value.strip()
    if not value:
        raise ValueError("empty JID")
    if "@" in value:
        user, server = value.rsplit("@", 1)
    else:
        user, server = value.lstrip("+"), PHONE_SERVER
    device = agent = 0
    if ":" in user:
        user, device_part = user.split(":", 1)
        device = int(device_part)
    if "." in user:
        user, agent_part = user.split(".", 1)
        agent = int(agent_part)
    if not server:
        raise ValueError(f"JID without server: {value!r}")
    if not keep_device:
        device = agent = 0
    return JID(User=user, Server=server, Device=device, RawAgent=agent, Integrator=0, IsEmpty=False)


EMPTY_JID = JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)

# Envelopes whatsmeow may leave in place (history sync never unwraps anything):
# each holds the real message in ``.message``.
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "deviceSentMessage",
    "groupMentionedMessage",
    "lottieStickerMessage",
    "botInvokeMessage",
)

# Fields that never carry user content on their own: keys, receipts-of-sorts,
# reactions, edits/revokes (protocolMessage), poll votes, pins. A message made
# only of these maps to None (nothing to show in the inbox). Edits and revokes
# are not modelled by base.InboundMessage, so they are dropped too.
_SILENT_FIELDS = frozenset(
    {
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "messageContextInfo",
        "protocolMessage",
        "reactionMessage",
        "encReactionMessage",
        "pollUpdateMessage",
        "keepInChatMessage",
        "pinInChatMessage",
        "editedMessage",
        "encEventResponseMessage",
        "encCommentMessage",
        "stickerSyncRmrMessage",
        "call",
        "callLogMesssage",
        "placeholderMessage",
        "messageHistoryNotice",
        "groupRootKeyShare",
        "rootSecretDistributeMessage",
    }
)

_POLL_FIELDS = (
    "pollCreationMessage",
    "pollCreationMessageV2",
    "pollCreationMessageV3",
    "pollCreationMessageV5",
    "pollCreationMessageV6",
)

# Media kinds: (field on waE2E.Message, field the media_ref uses). A PTV (round
# video note) is stored as a videoMessage because whatsmeow's DownloadAny only
# looks at image/video/audio/document/sticker fields.
_MEDIA_FIELDS = {
    "imageMessage": ("imageMessage", base.MessageKind.IMAGE),
    "videoMessage": ("videoMessage", base.MessageKind.VIDEO),
    "ptvMessage": ("videoMessage", base.MessageKind.VIDEO),
    "audioMessage": ("audioMessage", None),  # AUDIO or VOICE, by .PTT
    "documentMessage": ("documentMessage", base.MessageKind.DOCUMENT),
    "stickerMessage": ("stickerMessage", base.MessageKind.STICKER),
}


def unwrap(message: Message) -> Message:
    """The innermost content of ephemeral / view-once / device-sent / ... envelopes."""
    for _ in range(8):  # envelopes nest at most a few levels; never loop forever
        for name in _WRAPPERS:
            if message.HasField(name) and getattr(message, name).HasField("message"):
                message = getattr(message, name).message
                break
        else:
            return message
    return message


@dataclass(frozen=True)
class _Content:
    """What a waE2E.Message says, independent of who sent it where."""

    kind: base.MessageKind
    text: str = ""
    mimetype: str = ""
    filename: str = ""
    file_size: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_name: str = ""
    quoted_id: str = ""
    media_ref: bytes | None = None


def _quoted_id(part: Any) -> str:
    try:
        if part.HasField("contextInfo"):
            return part.contextInfo.stanzaID
    except ValueError:  # this message type has no contextInfo
        pass
    return ""


def _media_ref(ref_field: str, part: Any) -> bytes:
    # Only the media part is kept, without contextInfo: the quoted message in
    # there can be large and download_any does not need it.
    ref = Message()
    getattr(ref, ref_field).CopyFrom(part)
    getattr(ref, ref_field).ClearField("contextInfo")
    return ref.SerializeToString(deterministic=True)


def map_content(message: Message) -> _Content | None:
    """Map the content of a waE2E.Message; None when it carries nothing to show."""
    message = unwrap(message)
    if message.HasField("conversation"):
        return _Content(kind=base.MessageKind.TEXT, text=message.conversation)
    if message.HasField("extendedTextMessage"):
        part = message.extendedTextMessage
        return _Content(kind=base.MessageKind.TEXT, text=part.text, quoted_id=_quoted_id(part))

    for name, (ref_field, kind) in _MEDIA_FIELDS.items():
        if not message.HasField(name):
            continue
        part = getattr(message, name)
        if kind is None:  # audioMessage: a voice note or a plain audio, by .PTT
            kind = base.MessageKind.VOICE if part.PTT else base.MessageKind.AUDIO
        filename = ""
        if name == "documentMessage":
            filename = part.fileName or part.title
        return _Content(
            kind=kind,
            text=getattr(part, "caption", ""),  # audio and stickers have none
            mimetype=part.mimetype,
            filename=filename,
            file_size=part.fileLength if part.HasField("fileLength") else None,
            quoted_id=_quoted_id(part),
            media_ref=_media_ref(ref_field, part),
        )

    if message.HasField("locationMessage"):
        part = message.locationMessage
        return _Content(
            kind=base.MessageKind.LOCATION,
            text=part.comment or part.address,
            latitude=part.degreesLatitude,
            longitude=part.degreesLongitude,
            location_name=part.name,
            quoted_id=_quoted_id(part),
        )
    if message.HasField("liveLocationMessage"):
        part = message.liveLocationMessage
        return _Content(
            kind=base.MessageKind.LOCATION,
            text=part.caption,
            latitude=part.degreesLatitude,
            longitude=part.degreesLongitude,
            quoted_id=_quoted_id(part),
        )
    if message.HasField("contactMessage"):
        part = message.contactMessage
        return _Content(
            kind=base.MessageKind.CONTACT,
            text=_contact_text(part),
            quoted_id=_quoted_id(part),
        )
    if message.HasField("contactsArrayMessage"):
        part = message.contactsArrayMessage
        return _Content(
            kind=base.MessageKind.CONTACT,
            text="\n\n".join(_contact_text(c) for c in part.contacts) or part.displayName,
            quoted_id=_quoted_id(part),
        )
    for name in _POLL_FIELDS:
        if message.HasField(name):
            part = getattr(message, name)
            return _Content(kind=base.MessageKind.OTHER, text=part.name, quoted_id=_quoted_id(part))

    present = [field.name for field, _ in message.ListFields()]
    if not present or all(name in _SILENT_FIELDS for name in present):
        return None
    # Something with user content we do not model (buttons, products, events,
    # group invites...): still an inbox entry, so agents know it arrived.
    first = getattr(message, next(n for n in present if n not in _SILENT_FIELDS))
    text = ""
    for attr in ("caption", "text", "name", "contentText"):
        with contextlib.suppress(AttributeError, ValueError):
            value = getattr(first, attr)
            if isinstance(value, str) and value:
                text = value
                break
    return _Content(kind=base.MessageKind.OTHER, text=text, quoted_id=_quoted_id(first))


def _contact_text(part: Any) -> str:
    return "\n".join(v for v in (part.displayName, part.vcard) if v)


def map_message(ev: MessageEv) -> base.InboundMessage | None:
    """Map a neonize MessageEv; None for messages with no user content.

    None is returned for: events without a decrypted message, and messages
    made only of protocol/bookkeeping parts (reactions, edits, revokes,
    sender-key distribution, poll votes, pins; see ``_SILENT_FIELDS``).
    """
    if not ev.HasField("Message"):
        return None
    content = map_content(ev.Message)
    if content is None:
        return None
    info = ev.Info
    source = info.MessageSource
    chat = jid_to_str(source.Chat)
    sender = jid_to_str(source.Sender)
    sender_alt = jid_to_str(source.SenderAlt)
    chat_alt = ""
    if not source.IsGroup:
        if source.IsFromMe:
            # In a DM we sent, RecipientAlt is the other address of the chat.
            chat_alt = jid_to_str(source.RecipientAlt)
        elif sender == chat:
            chat_alt = sender_alt
    if chat_alt == chat:
        chat_alt = ""
    return _inbound(
        content,
        message_id=info.ID,
        chat=chat,
        sender=sender,
        timestamp=to_datetime(info.Timestamp),
        sender_alt=sender_alt if sender_alt != sender else "",
        chat_alt=chat_alt,
        push_name=info.Pushname,
        from_me=source.IsFromMe,
        is_group=source.IsGroup,
    )


def _inbound(content: _Content, **envelope: Any) -> base.InboundMessage:
    """An InboundMessage from what the message says and where it came from."""
    said = {f.name: getattr(content, f.name) for f in dataclasses.fields(content)}
    return base.InboundMessage(**said, **envelope)


_RECEIPT_STATUS = {
    ReceiptEv.ReceiptType.DELIVERED: "delivered",
    ReceiptEv.ReceiptType.READ: "read",
    ReceiptEv.ReceiptType.PLAYED: "played",
}


def map_receipt(ev: ReceiptEv) -> base.Receipt | None:
    """Map a delivered/read/played receipt; None for the rest.

    Ignored: sender (our own send acknowledged), retry, server-error, inactive,
    peer, history-sync, and the ``*-self`` kinds (our own phone read an
    incoming message: not a status of an outgoing message).
    """
    status = _RECEIPT_STATUS.get(ev.Type)
    if status is None or not ev.MessageIDs:
        return None
    return base.Receipt(
        chat=jid_to_str(ev.MessageSource.Chat),
        sender=jid_to_str(ev.MessageSource.Sender),
        message_ids=tuple(ev.MessageIDs),
        status=status,
        timestamp=to_datetime(ev.Timestamp),
    )


def map_history(
    ev: HistorySyncEv,
    *,
    history_days: int,
    own_jid: str = "",
    now: datetime | None = None,
) -> base.HistoryBatch | None:
    """Map a history sync blob to the messages newer than ``history_days``.

    Messages that cannot be mapped (system stubs, protocol parts) are skipped,
    as are status updates (``statusV3Messages``). ``own_jid`` fills ``sender``
    for messages we sent (history does not say who "me" is). None when nothing
    is left.
    """
    if history_days <= 0:
        return None
    cutoff = (now or datetime.now(UTC)) - timedelta(days=history_days)
    out: list[base.InboundMessage] = []
    for conv in ev.Data.conversations:
        chat = strip_device(conv.ID)
        if not chat:
            continue
        is_group = base.is_group_jid(chat)
        chat_alt = ""
        if not is_group:
            alt = conv.pnJID if base.is_lid(chat) else conv.lidJID
            chat_alt = strip_device(alt) if alt and strip_device(alt) != chat else ""
        for item in conv.messages:
            if not item.HasField("message"):
                continue
            web = item.message
            timestamp = to_datetime(web.messageTimestamp)
            if timestamp < cutoff or not web.HasField("message"):
                continue
            content = map_content(web.message)
            if content is None:
                continue
            from_me = web.key.fromMe
            if from_me:
                sender = own_jid
            elif is_group:
                sender = strip_device(web.key.participant or web.participant)
            else:
                sender = chat
            out.append(
                _inbound(
                    content,
                    message_id=web.key.ID,
                    chat=chat,
                    sender=sender,
                    timestamp=timestamp,
                    sender_alt=chat_alt if (not is_group and not from_me) else "",
                    chat_alt=chat_alt,
                    push_name=web.pushName,
                    from_me=from_me,
                    is_group=is_group,
                )
            )
    if not out:
        return None
    out.sort(key=lambda m: m.timestamp)
    return base.HistoryBatch(messages=tuple(out))


def map_group_info(info: GroupInfo) -> base.GroupInfo:
    """A group's subject and members (the picture is asked for separately).

    A member's ``JID`` is how the group addresses them (a LID in groups that hide
    phone numbers); ``PhoneNumber`` and ``LID`` carry the other forms when known.
    """
    participants = []
    for p in info.Participants:
        forms = [jid_to_str(p.JID), jid_to_str(p.LID), jid_to_str(p.PhoneNumber)]
        jid = next((j for j in forms if j), "")
        if not jid:
            continue
        phone_jid = next((j for j in forms if base.is_phone_jid(j)), "")
        participants.append(
            base.GroupParticipant(
                jid=jid,
                phone=base.jid_user(phone_jid) if phone_jid else "",
                lid=next((j for j in forms if base.is_lid(j)), ""),
                is_admin=bool(p.IsAdmin or p.IsSuperAdmin),
                name=p.DisplayName,
            )
        )
    return base.GroupInfo(
        jid=jid_to_str(info.JID),
        subject=info.GroupName.Name,
        participants=tuple(participants),
    )


# What WhatsApp sends when a group changes (subject, members, admins, settings), when
# the number joins one, and when a picture changes (a group's, or a person's).
GROUP_EVENTS = (GroupInfoEv, JoinedGroupEv, PictureEv)


def map_group_event(ev: Any) -> base.GroupChanged | None:
    """One of ``GROUP_EVENTS`` as the group to look at again; None when it is not about
    a group (a contact changed their own picture)."""
    if isinstance(ev, JoinedGroupEv):
        jid = jid_to_str(ev.GroupInfo.JID)
    else:
        jid = jid_to_str(ev.JID)
    return base.GroupChanged(jid=jid) if base.is_group_jid(jid) else None


def _enum_name(enum: Any, value: int) -> str:
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


# Events that end or refuse a connection, handled alike by the session.
CONNECTION_EVENTS = (
    LoggedOutEv,
    StreamReplacedEv,
    ConnectFailureEv,
    TemporaryBanEv,
    ClientOutdatedEv,
)


def connection_event(ev: Any) -> tuple[str, base.ConnState, str]:
    """One of ``CONNECTION_EVENTS`` as the session's queue item: ``("finish", state,
    detail)`` when the device is gone for good, ``("state", DISCONNECTED, detail)`` when
    the connection was refused (whatsmeow or the session's loop tries again)."""
    if isinstance(ev, LoggedOutEv):
        reason = _enum_name(ConnectFailureReason, ev.Reason)
        return ("finish", base.ConnState.LOGGED_OUT, f"logged out ({reason})")
    if isinstance(ev, StreamReplacedEv):
        return ("finish", base.ConnState.LOGGED_OUT, "stream replaced")
    if isinstance(ev, ConnectFailureEv):
        reason = _enum_name(ConnectFailureReason, ev.Reason)
        detail = f"connect failure: {reason} {ev.Message}".strip()
    elif isinstance(ev, TemporaryBanEv):
        reason = _enum_name(TemporaryBanEv.TempBanReason, ev.Code)
        detail = f"temporary ban: {reason}, expires in {ev.Expire}"
    else:
        detail = "client outdated"
    return ("state", base.ConnState.DISCONNECTED, detail)
