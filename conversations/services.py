"""Every write to contacts, conversations and messages goes through here.

Callers (pages, API, sockets, worker) get the objects they pass in through the
selectors, which apply the access rule; these functions trust their arguments.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import selectors, vcard
from conversations.models import (
    FILE_KINDS,
    PREVIEW_ICONS,
    Contact,
    Conversation,
    Message,
    QuickReply,
)
from conversations.ratelimit import send_retry_after
from realtime import events
from vbcrm import metrics
from vbcrm.errors import field_error, unstorable
from whatsapp.gateway.base import (
    MEDIA_KINDS,
    InboundMessage,
    is_group_jid,
    is_lid,
    is_phone_jid,
    jid_user,
    new_message_id,
)
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4096
_IGNORED_CHAT_SUFFIXES = ("@broadcast", "@newsletter")


def message_preview(kind: str, body: str, file_name: str = "", location_name: str = "") -> str:
    """The conversation list's preview, stored in no language: an icon and the text,
    or the icon alone (``Conversation.preview_display`` adds the kind's label)."""
    if kind == Message.Kind.CONTACT:
        body = vcard.parse(body).name  # not the raw "BEGIN:VCARD VERSION:3.0 ..."
    text = " ".join((body or file_name or location_name or "").split())
    icon = PREVIEW_ICONS.get(kind)
    if icon:
        text = f"{icon} {text}".strip()
    return text[:200]


# --- Contacts and conversations ------------------------------------------------------


@dataclass(frozen=True)
class _Addresses:
    jid: str  # the address the conversation is keyed by
    lid: str
    phone: str


def _addresses(msg: InboundMessage) -> _Addresses:
    """Work out a contact's phone JID and LID from whatever the message carries."""
    if msg.is_group or is_group_jid(msg.chat):
        return _Addresses(jid=msg.chat, lid="", phone="")
    candidates = [msg.chat, msg.chat_alt]
    if not msg.from_me:
        candidates += [msg.sender, msg.sender_alt]
    phone_jid = next((j for j in candidates if j and is_phone_jid(j)), "")
    lid = next((j for j in candidates if j and is_lid(j)), "")
    return _Addresses(
        jid=phone_jid or lid or msg.chat,
        lid=lid,
        phone=jid_user(phone_jid) if phone_jid else "",
    )


def _find_contact(session_id: int, addr: _Addresses) -> Contact | None:
    q = Q(jid=addr.jid)
    if addr.lid:
        q |= Q(lid=addr.lid) | Q(jid=addr.lid)
    return _preferred(Contact.objects.filter(q, session_id=session_id)[:2])


def _preferred(found: Iterable[Contact]) -> Contact | None:
    # Prefer the row keyed by the phone JID when a LID-only row also exists.
    return min(found, key=lambda c: not is_phone_jid(c.jid), default=None)


def _is_at(contact: Contact, addr: _Addresses) -> bool:
    """Whether _find_contact's query matches this contact for these addresses."""
    return contact.jid == addr.jid or (bool(addr.lid) and addr.lid in (contact.lid, contact.jid))


def _contact_for(session: WhatsAppSession, addr: _Addresses, push_name: str) -> Contact:
    contact = _find_contact(session.pk, addr)
    if contact is None:
        # Double-checked under the number's row lock: concurrent first messages from
        # one contact must make one contact and one conversation, not several.
        WhatsAppSession.objects.select_for_update(no_key=True).filter(pk=session.pk).values(
            "pk"
        ).first()
        contact = _find_contact(session.pk, addr)
    if contact is None:
        return Contact.objects.create(
            session=session,
            jid=addr.jid,
            lid=addr.lid,
            phone=addr.phone,
            push_name=push_name[:128],
            is_group=is_group_jid(addr.jid),
        )
    _contact_learn(contact, addr, push_name)
    return contact


def _contact_learn(contact: Contact, addr: _Addresses, push_name: str) -> None:
    """Save what a message tells about a known contact: its LID, its phone, its name."""
    fields = []
    if addr.lid and not contact.lid and contact.jid != addr.lid:
        contact.lid = addr.lid
        fields.append("lid")
    if addr.phone and is_lid(contact.jid):
        # First seen by LID, now we learn the phone: key it by the phone JID.
        contact.jid, contact.lid, contact.phone = addr.jid, contact.jid, addr.phone
        fields += ["jid", "lid", "phone"]
    if push_name and not contact.is_group and push_name != contact.push_name:
        contact.push_name = push_name[:128]
        fields.append("push_name")
    if fields:
        contact.save(update_fields=[*fields, "updated_at"])


def _conversation_for(session: WhatsAppSession, contact: Contact) -> Conversation:
    conversation = Conversation.objects.filter(session=session, contact=contact).first()
    if conversation is None:
        WhatsAppSession.objects.select_for_update(no_key=True).filter(pk=session.pk).values(
            "pk"
        ).first()
        conversation, _created = Conversation.objects.get_or_create(
            session=session, contact=contact
        )
    return conversation


def _conversations_for(
    session: WhatsAppSession, names: dict[_Addresses, str]
) -> dict[_Addresses, Conversation]:
    """_contact_for and _conversation_for for each address of a batch (with the name
    its contact carries), in order, the known ones read in two queries in all.

    Each address gets what _find_contact would find at that point, message after
    message: the lookup follows what earlier addresses of the batch taught or created.
    Whatever is not found takes the per-address path, with its fresh read and its lock.
    """
    keys = {a.jid for a in names} | {a.lid for a in names if a.lid}
    by_jid: dict[str, Contact] = {}
    by_lid: dict[str, Contact] = {}

    def remember(contact: Contact) -> None:
        by_jid[contact.jid] = contact
        if contact.lid:
            by_lid[contact.lid] = contact

    for contact in Contact.objects.filter(Q(jid__in=keys) | Q(lid__in=keys), session=session):
        remember(contact)
    contact_of: dict[_Addresses, Contact] = {}
    for addr, name in names.items():
        near = [by_jid.get(addr.jid), by_lid.get(addr.lid), by_jid.get(addr.lid)]
        contact = _preferred(c for c in near if c is not None and _is_at(c, addr))
        if contact is None:
            contact = _contact_for(session, addr, name)
        else:
            _contact_learn(contact, addr, name)
        remember(contact)
        contact_of[addr] = contact

    conversations = {
        c.contact_id: c
        for c in Conversation.objects.filter(
            session=session, contact__in=[c.pk for c in contact_of.values()]
        )
    }
    conversation_of: dict[_Addresses, Conversation] = {}
    for addr, contact in contact_of.items():
        conversation = conversations.get(contact.pk)
        if conversation is None:
            conversation = conversations[contact.pk] = _conversation_for(session, contact)
        conversation.contact = contact
        conversation_of[addr] = conversation
    return conversation_of


# --- Inbound ---------------------------------------------------------------------------


def _ignored(session: WhatsAppSession, msg: InboundMessage) -> bool:
    if msg.chat.endswith(_IGNORED_CHAT_SUFFIXES):
        return True
    return bool(session.ignore_groups and (msg.is_group or is_group_jid(msg.chat)))


def _message_fields(msg: InboundMessage) -> dict:
    kind = Message.Kind(msg.kind.value if hasattr(msg.kind, "value") else msg.kind)
    has_media = kind in MEDIA_KINDS and msg.media_ref is not None
    return {
        "wa_id": msg.message_id,
        "direction": Message.Direction.OUTBOUND if msg.from_me else Message.Direction.INBOUND,
        "kind": kind,
        "body": msg.text,
        "sender_jid": msg.sender if msg.is_group else "",
        "sender_name": (msg.push_name if msg.is_group else "")[:128],
        "media_ref": msg.media_ref if has_media else None,
        "media_status": Message.MediaStatus.DOWNLOADING if has_media else "",
        "mime_type": msg.mimetype[:127],
        "file_name": msg.filename[:255],
        "file_size": msg.file_size,
        "latitude": msg.latitude,
        "longitude": msg.longitude,
        "location_name": msg.location_name[:255],
        "status": Message.Status.SENT if msg.from_me else Message.Status.RECEIVED,
        "wa_timestamp": msg.timestamp,
        "quoted_wa_id": msg.quoted_id,
    }


def message_receive(*, session: WhatsAppSession, msg: InboundMessage) -> Message | None:
    """Store one message seen on WhatsApp, exactly once.

    Returns the new message, or ``None`` when it was a replay (same WhatsApp id
    in the same conversation) or is ignored (status broadcasts, groups when the
    number ignores them). Counters and preview move in the same transaction.
    """
    if _ignored(session, msg):
        return None
    with transaction.atomic():
        addr = _addresses(msg)
        contact = _contact_for(session, addr, "" if msg.from_me or msg.is_group else msg.push_name)
        conversation = _conversation_for(session, contact)
        if Message.objects.filter(conversation=conversation, wa_id=msg.message_id).exists():
            return None
        fields = _message_fields(msg)
        if msg.quoted_id:
            fields["reply_to"] = Message.objects.filter(
                conversation=conversation, wa_id=msg.quoted_id
            ).first()
        try:
            with transaction.atomic():
                message = Message.objects.create(conversation=conversation, **fields)
        except IntegrityError:
            return None  # a concurrent replay won the race
        _conversation_touch(conversation, message, inbound=not msg.from_me)
        message.conversation.contact = contact  # the event renders it: no extra query
    metrics.MESSAGES_IN.inc()
    events.message_created(message)
    return message


def _conversation_touch(conversation: Conversation, message: Message, *, inbound: bool) -> None:
    """Move the conversation's counters and preview for a new message (inside its transaction)."""
    conv = Conversation.objects.select_for_update(no_key=True).get(pk=conversation.pk)
    when = message.wa_timestamp or message.created_at
    fields = ["updated_at"]
    if not conv.last_message_preview or when >= conv.last_message_at:
        conv.last_message_at = when
        conv.last_message_preview = message_preview(
            message.kind, message.body, message.file_name, message.location_name
        )
        fields += ["last_message_at", "last_message_preview"]
    if inbound:
        conv.unread_count = F("unread_count") + 1
        fields.append("unread_count")
        if conv.status == Conversation.Status.CLOSED:
            conv.status = Conversation.Status.OPEN
            fields.append("status")
    conv.save(update_fields=fields)
    conv.refresh_from_db(fields=["unread_count"])
    message.conversation = conv


def message_receive_batch(
    *, session: WhatsAppSession, msgs: Sequence[InboundMessage]
) -> list[Message]:
    """Store several messages seen on WhatsApp in ONE transaction (group commit).

    What the worker calls when messages queue up under load. Every guarantee of
    :func:`message_receive` holds, message by message and in order: stored once
    (a WhatsApp id already stored, or twice in the batch, is skipped), one contact
    and one conversation per contact (same row locks), counters and preview move in
    the same transaction, an inbound message reopens a closed conversation, and the
    events go out after commit. Returns the new messages, in order. Each event
    carries its conversation as the whole batch left it.
    """
    wanted = [m for m in msgs if not _ignored(session, m)]
    if len(wanted) <= 1:
        one = message_receive(session=session, msg=wanted[0]) if wanted else None
        return [one] if one is not None else []
    try:
        with transaction.atomic():
            created = _receive_many(session, wanted)
    except IntegrityError:
        # Someone stored one of them between our check and our insert: one by one,
        # each deduped on its own.
        stored = [message_receive(session=session, msg=m) for m in wanted]
        return [m for m in stored if m is not None]
    metrics.MESSAGES_IN.inc(len(created))
    events.messages_created(created)
    return created


def _receive_many(session: WhatsAppSession, msgs: list[InboundMessage]) -> list[Message]:
    # Contacts and conversations: once per address, in the order first seen, with the
    # name the last of its messages carried (what message after message would leave).
    addrs = [_addresses(msg) for msg in msgs]
    names: dict[_Addresses, str] = {}
    for msg, addr in zip(msgs, addrs, strict=True):
        name = "" if msg.from_me or msg.is_group else msg.push_name
        names[addr] = name or names.get(addr, "")
    conversation_of = _conversations_for(session, names)
    plan = [(msg, conversation_of[addr]) for msg, addr in zip(msgs, addrs, strict=True)]

    seen = set(
        Message.objects.filter(_by_wa_id((c.pk, msg.message_id) for msg, c in plan)).values_list(
            "conversation_id", "wa_id"
        )
    )
    quoted = [(c.pk, msg.quoted_id) for msg, c in plan if msg.quoted_id]
    replied: dict[tuple[int, str], Message] = {}
    if quoted:
        for m in Message.objects.filter(_by_wa_id(quoted)):
            replied[(m.conversation_id, m.wa_id)] = m
    new: list[tuple[InboundMessage, Message]] = []
    for msg, conversation in plan:
        key = (conversation.pk, msg.message_id)
        if key in seen:
            continue  # a replay, or a second copy in this batch
        seen.add(key)
        message = Message(conversation=conversation, **_message_fields(msg))
        message.reply_to = replied.get((conversation.pk, msg.quoted_id))
        new.append((msg, message))
    if not new:
        return []
    Message.objects.bulk_create([m for _msg, m in new])
    # A message quoting an earlier one of the same batch: linked now both have ids.
    later = []
    for msg, message in new:
        replied.setdefault((message.conversation_id, message.wa_id), message)
        if msg.quoted_id and message.reply_to is None:
            target = replied.get((message.conversation_id, msg.quoted_id))
            if target is not None and target is not message:
                message.reply_to = target
                later.append(message)
    if later:
        Message.objects.bulk_update(later, ["reply_to"])

    # Counters and preview: each conversation once, locked in id order (no deadlocks).
    locked = {
        c.pk: c
        for c in Conversation.objects.select_for_update(no_key=True)
        .filter(pk__in={m.conversation_id for _, m in new})
        .order_by("pk")
    }
    changed: dict[int, set[str]] = {pk: {"updated_at"} for pk in locked}
    for msg, message in new:
        conv = locked[message.conversation_id]
        fields = changed[conv.pk]
        when = message.wa_timestamp or message.created_at
        if not conv.last_message_preview or when >= conv.last_message_at:
            conv.last_message_at = when
            conv.last_message_preview = message_preview(
                message.kind, message.body, message.file_name, message.location_name
            )
            fields |= {"last_message_at", "last_message_preview"}
        if not msg.from_me:
            conv.unread_count += 1  # the row is locked: no lost update
            fields.add("unread_count")
            if conv.status == Conversation.Status.CLOSED:
                conv.status = Conversation.Status.OPEN
                fields.add("status")
    contacts = {c.pk: c.contact for c in conversation_of.values()}
    for pk, conv in locked.items():
        conv.save(update_fields=sorted(changed[pk]))
        # the events show both: no query per conversation
        conv.contact = contacts[pk]
        conv.session = session
    for _msg, message in new:
        message.conversation = locked[message.conversation_id]
    return [m for _msg, m in new]


def _by_wa_id(keys: Iterable[tuple[int, str]]) -> Q:
    """The messages with these (conversation, WhatsApp id) keys.

    One condition per conversation, each a few lookups in the unique key's index:
    with one IN list of conversations and one of ids, PostgreSQL may read every message
    of those conversations instead.
    """
    wanted: dict[int, set[str]] = {}
    for conversation_id, wa_id in keys:
        wanted.setdefault(conversation_id, set()).add(wa_id)
    if not wanted:
        return Q(pk__in=())  # no message (an empty Q would match them all)
    return Q(*(Q(conversation_id=c, wa_id__in=ids) for c, ids in wanted.items()), _connector=Q.OR)


def history_import(*, session: WhatsAppSession, messages: Sequence[InboundMessage]) -> int:
    """Import a history batch in bulk; older than the number's history-days are dropped.

    Same dedupe as live messages (the unique WhatsApp id). History never counts
    as unread and never reopens a closed conversation. Returns how many were new.
    """
    cutoff = timezone.now() - timedelta(days=session.history_days)
    by_chat: dict[str, list[InboundMessage]] = {}
    for msg in messages:
        if msg.timestamp >= cutoff and not _ignored(session, msg):
            by_chat.setdefault(msg.chat, []).append(msg)
    if not by_chat:
        return 0
    touched: list[Conversation] = []
    with transaction.atomic():
        # A chat's contact and conversation from its first message's address, all the
        # known ones in two queries (the live batch path's lookup).
        addr_of = {chat: _addresses(chat_msgs[0]) for chat, chat_msgs in by_chat.items()}
        conversation_of = _conversations_for(session, dict.fromkeys(addr_of.values(), ""))
        plan = [
            (msg, conversation_of[addr_of[chat]])
            for chat, chat_msgs in by_chat.items()
            for msg in chat_msgs
        ]
        seen = set(
            Message.objects.filter(
                _by_wa_id((c.pk, msg.message_id) for msg, c in plan)
            ).values_list("conversation_id", "wa_id")
        )
        new: dict[int, list[InboundMessage]] = {}
        rows = []
        for msg, conversation in plan:
            key = (conversation.pk, msg.message_id)
            if key in seen:
                continue  # stored already, or twice in this batch
            seen.add(key)
            new.setdefault(conversation.pk, []).append(msg)
            rows.append(Message(conversation=conversation, **_message_fields(msg)))
        # A live copy stored between the check and here is skipped, not an error (and is
        # counted as new: the count only goes to the log).
        Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        locked = Conversation.objects.select_for_update(no_key=True).filter(pk__in=new)
        for conv in locked.order_by("pk"):
            newest = max(new[conv.pk], key=lambda m: m.timestamp)
            if not conv.last_message_preview or newest.timestamp > conv.last_message_at:
                conv.last_message_at = newest.timestamp
                conv.last_message_preview = message_preview(
                    newest.kind, newest.text, newest.filename, newest.location_name
                )
                conv.save(update_fields=["last_message_at", "last_message_preview", "updated_at"])
            touched.append(conv)
    contacts = {c.pk: c.contact for c in conversation_of.values()}
    for conv in touched:  # what the events show, without a query each
        conv.contact, conv.session = contacts[conv.pk], session
    created = len(rows)
    for conv in touched:
        events.conversation_updated(conv)
    logger.info("history imported session=%s new=%d", session.pk, created)
    return created


def message_media_stored(
    *, message_id: int, path: str, size: int, mime_type: str = ""
) -> Message | None:
    """The worker saved an inbound message's file under MEDIA_ROOT (``path`` is relative)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return None
        message.media.name = path
        message.file_size = size
        if mime_type and not message.mime_type:
            message.mime_type = mime_type
        message.media_status = Message.MediaStatus.READY
        message.save(
            update_fields=["media", "file_size", "mime_type", "media_status", "updated_at"]
        )
        events.message_updated(message)
    return message


def message_media_failed(*, message_id: int, error: str) -> None:
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return
        message.media_status = Message.MediaStatus.FAILED
        message.error = error[:500]
        message.save(update_fields=["media_status", "error", "updated_at"])
        events.message_updated(message)


_STATUS_ORDER = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}


def message_receipt(
    *, session: WhatsAppSession, message_ids: Iterable[str], status: str
) -> list[Message]:
    """Move our messages forward to delivered/read ("played" counts as read). Never back."""
    target = Message.Status.READ if status in {"read", "played"} else Message.Status.DELIVERED
    earlier = [s for s, rank in _STATUS_ORDER.items() if rank < _STATUS_ORDER[target]]
    with transaction.atomic():
        qs = Message.objects.filter(
            conversation__session=session,
            wa_id__in=list(message_ids),
            direction=Message.Direction.OUTBOUND,
            status__in=earlier,
        )
        changed = list(qs.select_related("conversation"))
        now = timezone.now()
        if changed:
            Message.objects.filter(pk__in=[m.pk for m in changed]).update(
                status=target, in_flight=False, updated_at=now
            )
        for m in changed:
            # The fragment carries updated_at: pages keep the newest version they saw.
            m.status, m.updated_at = target, now
            events.message_updated(m)
    return changed


# --- Outbound (the outbox) ---------------------------------------------------------------


def message_send(
    *,
    user: AbstractBaseUser,
    conversation: Conversation,
    text: str,
    upload: UploadedFile | None = None,
    kind: str | None = None,
    reply_to_id: int | None = None,
    client_key: str = "",
) -> Message:
    """An agent's reply from any door (page, API, socket): the checks, then the write.

    In this order, each refusal a ValidationError that stores nothing: the send rate
    (code ``rate_limited``, ``params["retry_after"]`` in seconds), the quoted message
    (``reply_to_id``: ``not_found`` unless the user may see it, ``invalid`` from another
    conversation), text PostgreSQL cannot store (NUL characters, lone surrogates), then
    ``message_queue_outbound``'s own rules. ``conversation`` is one the user may see.
    """
    retry_after = send_retry_after(user)
    if retry_after:
        raise ValidationError(
            _("Too many messages: at most %(n)d a minute."),
            code="rate_limited",
            params={"n": settings.VBCRM_SEND_RATE_PER_MINUTE, "retry_after": retry_after},
        )
    reply_to = None
    if reply_to_id is not None:
        try:
            reply_to = selectors.message_get(user=user, message_id=reply_to_id)
        except Message.DoesNotExist:
            raise field_error(
                "reply_to_id", _("The quoted message does not exist."), "not_found"
            ) from None
        if reply_to.conversation_id != conversation.pk:
            raise field_error("reply_to_id", _("No such message in this conversation."))
    for field, value in (("text", text), ("client_key", client_key)):
        reason = unstorable(value or "")
        if reason is not None:
            raise field_error(field, _(reason))
    return message_queue_outbound(
        user=user,
        conversation=conversation,
        text=text,
        upload=upload,
        kind=kind,
        reply_to=reply_to,
        client_key=client_key,
    )


def message_queue_outbound(
    *,
    user: AbstractBaseUser,
    conversation: Conversation,
    text: str = "",
    upload: UploadedFile | None = None,
    kind: str | None = None,
    reply_to: Message | None = None,
    client_key: str = "",
) -> Message:
    """Store an agent's reply as ``pending``; the worker holding the number sends it.

    With ``client_key``, a retried request returns the message already queued
    instead of sending twice.
    """
    text = (text or "").strip()
    if upload is None and not text:
        raise field_error("text", _("Type a message or attach a file."), "empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise field_error(
            "text",
            _("Messages are limited to %(n)d characters.") % {"n": MAX_TEXT_LENGTH},
            "too_long",
        )
    if conversation.contact.is_group and conversation.session.ignore_groups:
        raise ValidationError(_("This number ignores group chats."), code="groups_ignored")
    if client_key:
        existing = Message.objects.filter(sent_by=user, client_key=client_key).first()
        if existing is not None:
            return existing
    # Only a message of this conversation can be quoted.
    quoted = reply_to if reply_to and reply_to.conversation_id == conversation.pk else None
    fields: dict = {"kind": Message.Kind.TEXT, "body": text}
    if upload is not None:
        fields.update(_upload_fields(upload, kind))
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                wa_id=new_message_id(),
                direction=Message.Direction.OUTBOUND,
                status=Message.Status.PENDING,
                sent_by=user,
                reply_to=quoted,
                quoted_wa_id=quoted.wa_id if quoted else "",
                client_key=client_key[:64],
                **fields,
            )
            _conversation_touch(conversation, message, inbound=False)
            events.message_created(message)
            events.worker_wakeup(conversation.session_id)
    except IntegrityError:
        if client_key:  # the same key raced in from a concurrent retry
            return Message.objects.get(sent_by=user, client_key=client_key)
        raise
    logger.info("message queued id=%s conversation=%s", message.pk, conversation.pk)
    return message


_MIME_KINDS = (
    ("image/webp", Message.Kind.STICKER),
    ("image/", Message.Kind.IMAGE),
    ("video/", Message.Kind.VIDEO),
    ("audio/ogg", Message.Kind.VOICE),
    ("audio/", Message.Kind.AUDIO),
)


def _upload_fields(upload: UploadedFile, kind: str | None) -> dict:
    from django.conf import settings

    if upload.size is not None and upload.size > settings.VBCRM_MAX_UPLOAD_BYTES:
        mb = settings.VBCRM_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise field_error("file", _("The file is larger than %(mb)d MB.") % {"mb": mb}, "too_large")
    mime = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
    if kind:
        if kind not in FILE_KINDS:
            raise field_error("kind", _("This kind of file cannot be sent."), "kind")
    else:
        kind = next((k for prefix, k in _MIME_KINDS if mime.startswith(prefix)), None)
        kind = kind or Message.Kind.DOCUMENT
    return {
        "kind": kind,
        "media": upload,
        "media_status": Message.MediaStatus.READY,
        "mime_type": mime[:127],
        "file_name": (upload.name or "file")[:255],
        "file_size": upload.size,
    }


def message_retry(*, message: Message) -> Message:
    """Put a failed reply back in the outbox (the agent pressed retry)."""
    with transaction.atomic():
        updated = Message.objects.filter(
            pk=message.pk, status=Message.Status.FAILED, direction=Message.Direction.OUTBOUND
        ).update(
            status=Message.Status.PENDING,
            error="",
            attempts=0,
            next_attempt_at=None,
            in_flight=False,
            updated_at=timezone.now(),
        )
        if not updated:
            raise ValidationError(_("Only failed messages can be retried."), code="not_failed")
        message.refresh_from_db()
        events.message_updated(message)
        events.worker_wakeup(message.conversation.session_id)
    return message


# The worker's side of the outbox. Each runs in its own short transaction.


def outbox_pending(*, session_id: int, now: datetime | None = None) -> list[Message]:
    """Replies ready to go, oldest first; one per conversation so order is kept."""
    now = now or timezone.now()
    pending = (
        Message.objects.filter(
            conversation__session_id=session_id,
            status=Message.Status.PENDING,
            direction=Message.Direction.OUTBOUND,
        )
        .select_related("conversation__contact", "reply_to")
        .order_by("id")
    )
    ready, seen = [], set()
    for m in pending[:500]:
        if m.conversation_id in seen:
            continue
        seen.add(m.conversation_id)  # a later message waits for the one before it
        if m.next_attempt_at is None or m.next_attempt_at <= now:
            ready.append(m)
    return ready


def outbox_claim(*, message_id: int, lease_token: uuid.UUID) -> bool:
    """Mark a reply as handed to WhatsApp. False if it is no longer ours to send.

    ``lease_token`` fences the send: a worker whose lease on the number was
    taken over can no longer claim (and so never sends) its replies.
    """
    return bool(
        Message.objects.filter(
            pk=message_id,
            status=Message.Status.PENDING,
            in_flight=False,
            conversation__session__lease_token=lease_token,
        ).update(in_flight=True, attempts=F("attempts") + 1, updated_at=timezone.now())
    )


def outbox_sent(*, message_id: int, wa_id: str, timestamp: datetime) -> Message | None:
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return None
        message.wa_id = wa_id or message.wa_id
        message.wa_timestamp = timestamp
        message.in_flight = False
        if message.status == Message.Status.PENDING:
            message.status = Message.Status.SENT
            metrics.MESSAGES_OUT.inc()
        message.error = ""
        message.save(
            update_fields=["wa_id", "wa_timestamp", "in_flight", "status", "error", "updated_at"]
        )
        events.message_updated(message)
    return message


MAX_SEND_ATTEMPTS = 6


def outbox_failed(*, message_id: int, error: str, transient: bool) -> Message | None:
    """Record a failed send: retried later with backoff, or failed for good."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return None
        message.in_flight = False
        message.error = error[:500]
        if transient and message.attempts < MAX_SEND_ATTEMPTS:
            delay = min(2**message.attempts, 300)
            message.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        else:
            message.status = Message.Status.FAILED
            metrics.SEND_FAILURES.inc()
        message.save(
            update_fields=["in_flight", "error", "next_attempt_at", "status", "updated_at"]
        )
        events.message_updated(message)
    return message


def outbox_recover(*, session_id: int, resend_safe: bool) -> int:
    """After a crash, settle replies that were handed to WhatsApp but never confirmed.

    When the gateway sends with our own message id (``resend_safe``) WhatsApp
    drops a second copy, so they simply go again. Otherwise they may or may not
    have gone out: they are marked failed with that reason rather than risk a
    double send, and the agent decides.
    """
    qs = Message.objects.filter(
        conversation__session_id=session_id, status=Message.Status.PENDING, in_flight=True
    )
    if resend_safe:
        return qs.update(in_flight=False)
    stuck = list(qs.select_related("conversation"))
    for m in stuck:
        outbox_failed(
            message_id=m.pk,
            error=_("Interrupted while sending: it may not have reached the customer."),
            transient=False,
        )
    return len(stuck)


# --- Agent actions ----------------------------------------------------------------------


def conversation_mark_read(*, conversation: Conversation, user: AbstractBaseUser) -> int:
    """The agent read the conversation: clear unread and queue the WhatsApp read receipt."""
    now = timezone.now()
    with transaction.atomic():
        count = Message.objects.filter(
            conversation=conversation,
            direction=Message.Direction.INBOUND,
            read_at__isnull=True,
        ).update(read_at=now, receipt_pending=True)
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0, updated_at=now)
        conversation.unread_count = 0
        if count:
            events.messages_read(conversation, user)
            events.worker_wakeup(conversation.session_id)
        events.conversation_updated(conversation)
    return count


def receipts_pending(*, session_id: int) -> list[tuple[str, str, list[str]]]:
    """Read receipts still owed to WhatsApp: (chat, sender, message ids)."""
    rows = (
        Message.objects.filter(conversation__session_id=session_id, receipt_pending=True)
        .order_by("id")
        .values_list("pk", "wa_id", "sender_jid", "conversation__contact__jid")[:1000]
    )
    grouped: dict[tuple[str, str], list[str]] = {}
    for _pk, wa_id, sender_jid, chat in rows:
        grouped.setdefault((chat, sender_jid or chat), []).append(wa_id)
    return [(chat, sender, ids) for (chat, sender), ids in grouped.items()]


def receipts_sent(*, session_id: int, chat: str, message_ids: Sequence[str]) -> None:
    Message.objects.filter(
        conversation__session_id=session_id,
        conversation__contact__jid=chat,
        wa_id__in=list(message_ids),
    ).update(receipt_pending=False)


def _conversation_save(conversation: Conversation, fields: list[str]) -> Conversation:
    with transaction.atomic():
        conversation.save(update_fields=[*fields, "updated_at"])
        events.conversation_updated(conversation)
    return conversation


def conversation_assign(
    *, conversation: Conversation, assignee: AbstractBaseUser | None
) -> Conversation:
    """Assign to an agent of the number (or the owner), or unassign with ``None``."""
    if assignee is not None:
        session = conversation.session
        allowed = assignee.pk == session.owner_id or session.agents.filter(pk=assignee.pk).exists()
        if not allowed:
            raise ValidationError(
                _("This user does not work this number's inbox."), code="not_agent"
            )
    conversation.assigned_to = assignee
    return _conversation_save(conversation, ["assigned_to"])


def conversation_set_status(*, conversation: Conversation, status: str) -> Conversation:
    if status not in Conversation.Status.values:
        raise field_error("status", _("Unknown status."))
    conversation.status = status
    return _conversation_save(conversation, ["status"])


def contact_update(
    *, contact: Contact, saved_name: str | None = None, notes: str | None = None
) -> Contact:
    fields = []
    if saved_name is not None:
        contact.saved_name = " ".join(saved_name.split())[:128]
        fields.append("saved_name")
    if notes is not None:
        contact.notes = notes[:5000]
        fields.append("notes")
    if fields:
        with transaction.atomic():
            contact.save(update_fields=[*fields, "updated_at"])
            for conv in contact.conversations.all():
                events.conversation_updated(conv)
    return contact


def conversation_start(*, session: WhatsAppSession, phone: str) -> Conversation:
    """Open (or find) the conversation with a phone number, to write first."""
    from whatsapp.services import normalise_phone

    digits = normalise_phone(phone)
    jid = f"{digits}@s.whatsapp.net"
    with transaction.atomic():
        contact = _contact_for(session, _Addresses(jid=jid, lid="", phone=digits), "")
        conversation = _conversation_for(session, contact)
    return conversation


# --- Quick replies ----------------------------------------------------------------------


def _quick_reply_fields(shortcut: str, text: str) -> tuple[str, str]:
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    if not re.fullmatch(r"[a-z0-9_-]{1,50}", shortcut):
        raise field_error(
            "shortcut",
            _("Use 1 to 50 letters, digits, hyphens or underscores (no spaces)."),
            "invalid_shortcut",
        )
    text = (text or "").strip()
    if not text:
        raise field_error("text", _("Write the text of the reply."), "required")
    if len(text) > MAX_TEXT_LENGTH:
        raise field_error(
            "text",
            _("Messages are limited to %(n)d characters.") % {"n": MAX_TEXT_LENGTH},
            "too_long",
        )
    return shortcut, text


def quick_reply_create(*, owner: AbstractBaseUser, shortcut: str, text: str) -> QuickReply:
    """A canned answer the agent inserts by typing ``/shortcut`` in the composer."""
    shortcut, text = _quick_reply_fields(shortcut, text)
    try:
        with transaction.atomic():
            reply = QuickReply.objects.create(owner=owner, shortcut=shortcut, text=text)
    except IntegrityError:
        raise field_error(
            "shortcut", _("You already have a quick reply with this shortcut."), "duplicate"
        ) from None
    logger.info("quick reply created id=%s owner=%s", reply.pk, owner.pk)
    return reply


def quick_reply_update(*, quick_reply: QuickReply, shortcut: str, text: str) -> QuickReply:
    quick_reply.shortcut, quick_reply.text = _quick_reply_fields(shortcut, text)
    try:
        with transaction.atomic():
            quick_reply.save(update_fields=["shortcut", "text"])
    except IntegrityError:
        raise field_error(
            "shortcut", _("You already have a quick reply with this shortcut."), "duplicate"
        ) from None
    return quick_reply


def quick_reply_delete(*, quick_reply: QuickReply) -> None:
    quick_reply.delete()
