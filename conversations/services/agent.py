"""What an agent does in the inbox besides replying: reading, assigning, closing,
naming contacts, opening conversations and keeping quick replies."""

from __future__ import annotations

import logging
import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import (
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    Queue,
    QuickReply,
)
from conversations.services import assignment, routing, webhooks
from conversations.services.inbound import _Addresses, _contact_for, _conversation_for
from conversations.services.outbox import MAX_TEXT_LENGTH
from realtime import events
from vbcrm.errors import field_error
from vbcrm.types import User
from whatsapp.models import WhatsAppSession
from whatsapp.phones import normalise_phone

logger = logging.getLogger(__name__)


def conversation_mark_read(*, conversation: Conversation, user: User) -> int:
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


def _conversation_save(conversation: Conversation, fields: list[str]) -> Conversation:
    with transaction.atomic():
        conversation.save(update_fields=[*fields, "updated_at"])
        events.conversation_updated(conversation)
    return conversation


def conversation_assign(
    *, conversation: Conversation, assignee: User | None, by: User | None = None
) -> Conversation:
    """Assign to an agent of the number (or the owner), or unassign with ``None``;
    ``by``: who did it (recorded, shown in the thread)."""
    if assignee is not None:
        session = conversation.session
        allowed = assignee.pk == session.owner_id or session.agents.filter(pk=assignee.pk).exists()
        if not allowed:
            raise ValidationError(
                _("This user does not work this number's inbox."), code="not_agent"
            )
    previous = conversation.assigned_to if conversation.assigned_to_id else None
    with transaction.atomic():
        conversation.assigned_to = assignee
        _conversation_save(conversation, ["assigned_to"])
        if (previous.pk if previous else None) != (assignee.pk if assignee else None):
            assignment.routing_event_record(
                conversation=conversation,
                kind=ConversationEvent.Kind.ASSIGNED,
                actor=by,
                from_user=previous,
                to_user=assignee,
            )
            assignment.after_assignment_change(
                conversation=conversation, previous_id=previous.pk if previous else None
            )
    return conversation


def conversation_set_status(*, conversation: Conversation, status: str) -> Conversation:
    if status not in Conversation.Status.values:
        raise field_error("status", _("Unknown status."))
    with transaction.atomic():
        closing = status == Conversation.Status.CLOSED and conversation.status != status
        conversation.status = status
        _conversation_save(conversation, ["status"])
        if closing:
            webhooks.webhook_conversation(conversation, webhooks.Event.CONVERSATION_CLOSED)
        if closing and conversation.assigned_to_id:
            assignment.after_assignment_change(
                conversation=conversation, previous_id=conversation.assigned_to_id
            )
    return conversation


def conversation_move(*, conversation: Conversation, queue: Queue | None, by: User) -> Conversation:
    """An agent moves the conversation to another queue of its number (or out of any);
    a round-robin queue then gives it to one of its agents if nobody has it."""
    if queue is not None and queue.session_id != conversation.session_id:
        raise field_error("queue_id", _("Choose one of this number's queues."), "not_found")
    routing.conversation_queue_set(conversation=conversation, queue=queue, by=by)
    if queue is not None and queue.assignment == Queue.Assignment.ROUND_ROBIN:
        transaction.on_commit(
            lambda: assignment.conversation_auto_assign(conversation_id=conversation.pk)
        )
    return conversation


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


def conversation_open(*, session: WhatsAppSession, phone: str, jid: str = "") -> Conversation:
    """Open (or find) the conversation with a phone number, unchecked: operators'
    commands, and ``conversation_start`` once WhatsApp said the phone has an account
    (``jid``: the address it gave, which may differ from the digits)."""
    digits = normalise_phone(phone)
    jid = jid or f"{digits}@s.whatsapp.net"
    phone = jid.split("@", 1)[0] if jid.endswith("@s.whatsapp.net") else digits
    with transaction.atomic():
        contact = _contact_for(session, _Addresses(jid=jid, lid="", phone=phone), "")
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


def quick_reply_create(*, owner: User, shortcut: str, text: str) -> QuickReply:
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
