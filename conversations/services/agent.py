"""What an agent does in the inbox besides replying: reading, assigning, closing,
naming contacts and opening conversations."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import (
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    Queue,
)
from conversations.services import assignment, routing, webhooks
from conversations.services.inbound import (
    OPENING_FIELDS,
    _Addresses,
    _contact_for,
    _conversation_for,
    opening_start,
)
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


def conversation_set_status(
    *, conversation: Conversation, status: str, by: User | None = None
) -> Conversation:
    """Open, mark pending or close; ``by``: who did it. Closing records how long the
    opening lasted and reopening starts a new one (the reports' resolution times)."""
    if status not in Conversation.Status.values:
        raise field_error("status", _("Unknown status."))
    with transaction.atomic():
        # The stored status and opening, not the instance's: a form may have set the
        # status already, and a customer's message may have reopened it since it was read.
        before, opened_at = (
            Conversation.objects.select_for_update(no_key=True)
            .filter(pk=conversation.pk)
            .values_list("status", "opened_at")
            .get()
        )
        conversation.opened_at = opened_at
        closing = status == Conversation.Status.CLOSED and before != status
        reopening = before == Conversation.Status.CLOSED and status != before
        conversation.status = status
        fields = ["status"]
        now = timezone.now()
        if closing:
            ConversationEvent.objects.create(
                conversation=conversation,
                kind=ConversationEvent.Kind.CLOSED,
                actor=by,
                to_user_id=conversation.assigned_to_id,
                since=conversation.opened_at or conversation.created_at,
                created_at=now,
            )
            conversation.waiting_since = None
            fields.append("waiting_since")
        elif reopening:
            opening_start(conversation, when=now, actor_id=by.pk if by else None).save()
            fields += sorted(OPENING_FIELDS)
        _conversation_save(conversation, fields)
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
    *,
    contact: Contact,
    saved_name: str | None = None,
    notes: str | None = None,
    no_auto_messages: bool | None = None,
) -> Contact:
    fields = []
    if no_auto_messages is not None:
        contact.no_auto_messages = no_auto_messages
        fields.append("no_auto_messages")
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
