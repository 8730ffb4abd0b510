"""Agents' replies: queued here, sent by the worker holding the number, and the
read receipts owed to WhatsApp."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import selectors, vcard
from conversations.models import FILE_KINDS, Conversation, Message
from conversations.ratelimit import send_retry_after
from conversations.services.inbound import _conversations_advance
from realtime import events
from vbcrm import metrics
from vbcrm.errors import field_error, unstorable
from vbcrm.types import User
from whatsapp.gateway.base import new_message_id
from whatsapp.phones import normalise_phone

logger = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4096
MAX_VCARD_LENGTH = 10_000


@dataclass(frozen=True)
class Location:
    """A place to send: coordinates in degrees, and an optional name and address."""

    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class ContactCard:
    """A contact card to send: a vCard as it is, or one made from a name and a phone."""

    name: str = ""
    phone: str = ""
    vcard: str = ""


def message_send(
    *,
    user: User,
    conversation: Conversation,
    text: str,
    upload: UploadedFile | None = None,
    kind: str | None = None,
    reply_to_id: int | None = None,
    client_key: str = "",
    location: Location | None = None,
    contact: ContactCard | None = None,
) -> Message:
    """An agent's message from any door (page, API, socket): the checks, then the write.

    One kind per message: text, a file (``upload``, its ``kind`` from its type unless
    given: a .webp goes as a sticker), a ``location`` or a ``contact`` card.

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
        # A private note is never quoted to WhatsApp: it has no WhatsApp id there.
        if reply_to.conversation_id != conversation.pk or reply_to.is_note:
            raise field_error("reply_to_id", _("No such message in this conversation."))
    strings = [("text", text), ("client_key", client_key)]
    if location is not None:
        strings += [("name", location.name), ("address", location.address)]
    if contact is not None:
        strings += [("name", contact.name), ("phone", contact.phone), ("vcard", contact.vcard)]
    for field, value in strings:
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
        location=location,
        contact=contact,
    )


def message_queue_outbound(
    *,
    user: User,
    conversation: Conversation,
    text: str = "",
    upload: UploadedFile | None = None,
    kind: str | None = None,
    reply_to: Message | None = None,
    client_key: str = "",
    location: Location | None = None,
    contact: ContactCard | None = None,
) -> Message:
    """Store an agent's reply as ``pending``; the worker holding the number sends it.

    With ``client_key``, a retried request returns the message already queued
    instead of sending twice.
    """
    text = (text or "").strip()
    if sum(x is not None for x in (upload, location, contact)) > 1:
        raise field_error("kind", _("Send one thing at a time."), "kind")
    if upload is None and location is None and contact is None and not text:
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
    elif location is not None:
        fields = _location_fields(location, text)
    elif contact is not None:
        fields = _contact_fields(contact)
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
            _conversations_advance([message], live=True)
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


def _location_fields(location: Location, text: str) -> dict:
    for field, value, limit in (
        ("latitude", location.latitude, 90),
        ("longitude", location.longitude, 180),
    ):
        if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
            raise field_error(
                field,
                _("Enter a number between -%(n)d and %(n)d.") % {"n": limit},
                "invalid_coordinate",
            )
    name = " ".join(location.name.split())
    if len(name) > 255:
        raise field_error("name", _("The name is limited to 255 characters."), "too_long")
    return {
        "kind": Message.Kind.LOCATION,
        "latitude": float(location.latitude),
        "longitude": float(location.longitude),
        "location_name": name,
        # Shown under the place; WhatsApp calls it the address.
        "body": (location.address or text).strip()[:MAX_TEXT_LENGTH],
    }


def _contact_fields(contact: ContactCard) -> dict:
    card = (contact.vcard or "").strip()
    if card:
        if "BEGIN:VCARD" not in card.upper() or not vcard.parse(card).name:
            raise field_error("vcard", _("This is not a vCard with a name (FN)."), "invalid")
        if len(card) > MAX_VCARD_LENGTH:
            raise field_error("vcard", _("The vCard is too long."), "too_long")
        return {"kind": Message.Kind.CONTACT, "body": card.replace("\r\n", "\n")}
    name = " ".join((contact.name or "").split())
    if not name:
        raise field_error("name", _("Enter the contact's name."), "required")
    if len(name) > 128:
        raise field_error("name", _("The name is limited to 128 characters."), "too_long")
    digits = normalise_phone(contact.phone)
    return {"kind": Message.Kind.CONTACT, "body": vcard.build(name, digits)}


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


def outbox_expire(*, now: datetime | None = None) -> int:
    """Fail the replies that waited too long for their number (down, logged out, no worker
    running it): ``VBCRM_OUTBOX_EXPIRY_HOURS`` untouched in the outbox. They keep the
    reason, and Retry puts them back. Any worker runs this for every number."""
    hours = settings.VBCRM_OUTBOX_EXPIRY_HOURS
    until = (now or timezone.now()) - timedelta(hours=hours)
    stale = Message.objects.filter(
        status=Message.Status.PENDING,
        direction=Message.Direction.OUTBOUND,
        in_flight=False,
        updated_at__lt=until,
    ).values_list("pk", flat=True)
    reason = _("Not sent: the number was not connected for %(hours)d hours.") % {"hours": hours}
    expired = 0
    for message_id in list(stale[:500]):
        with transaction.atomic():
            # Checked again under the row lock: a worker may have claimed it meanwhile.
            message = (
                Message.objects.select_for_update()
                .filter(pk=message_id, status=Message.Status.PENDING, in_flight=False)
                .filter(updated_at__lt=until)
                .first()
            )
            if message is None:
                continue
            message.status, message.error = Message.Status.FAILED, reason
            message.save(update_fields=["status", "error", "updated_at"])
            metrics.SEND_FAILURES.inc()
            events.message_updated(message)
        expired += 1
    if expired:
        logger.info("outbox expired %d replies", expired)
    return expired


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
