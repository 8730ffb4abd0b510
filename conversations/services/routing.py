"""The menu bot: which queue a customer's conversation goes to.

A number with two queues or more greets a new conversation with its menu ("1 — Vendas",
"2 — Suporte"); the customer answers with the digit or the queue's name (accents and
case ignored). A queue with sub-queues opens their menu (one level, no deeper). A wrong
answer gets the menu again, up to the number's limit; then the conversation goes to the
default queue. With one queue, a conversation goes straight to it; with none, nowhere.

Called by the inbound services after the customer's messages are stored (in the same
process, each conversation in a short transaction of its own). The bot's replies go
through the outbox like an agent's, stored as automatic and sent by nobody.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Sequence

from django.db import transaction

from conversations.models import (
    Conversation,
    ConversationEvent,
    Message,
    Queue,
    QueueSettings,
)
from conversations.services.assignment import conversation_auto_assign, routing_event_record
from conversations.services.inbound import _conversations_advance
from realtime import events
from vbcrm.types import User
from whatsapp.gateway.base import new_message_id

logger = logging.getLogger(__name__)


def normalise_answer(text: str) -> str:
    """Lower case, no accents, single spaces: "  SUPORTE técnico " -> "suporte tecnico"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split()).strip(" .!?)-–—")


def menu_text(greeting: str, options: Sequence[Queue], title: str = "") -> str:
    lines = [line for line in (greeting.strip(), title.strip()) if line]
    lines += [f"{i} — {q.name}" for i, q in enumerate(options, 1)]
    return "\n".join(lines)


def _match(text: str, options: Sequence[Queue]) -> Queue | None:
    answer = normalise_answer(text)
    if not answer:
        return None
    if answer.isdigit():
        index = int(answer)
        return options[index - 1] if 1 <= index <= len(options) else None
    return next((q for q in options if normalise_answer(q.name) == answer), None)


# Whether a number has queues, per process, for a few seconds: a number without any
# (most of them) costs its busy inbound path no query per message. Queue services forget
# a number when they change its queues; other processes see it within the TTL.
_HAS_QUEUES_TTL = 5.0
_has_queues: dict[int, tuple[bool, float]] = {}


def session_has_queues(session_id: int) -> bool:
    now = time.monotonic()
    known = _has_queues.get(session_id)
    if known is not None and known[1] > now:
        return known[0]
    found = Queue.objects.filter(session_id=session_id).exists()
    _has_queues[session_id] = (found, now + _HAS_QUEUES_TTL)
    return found


def session_queues_changed(session_id: int) -> None:
    _has_queues.pop(session_id, None)


def routing_after_inbound(*, messages: Sequence[Message], reopened: set[int]) -> None:
    """The menu bot's turn after customers' messages were stored (and committed).

    The hot path: a conversation already in a queue, and not reopened just now, costs
    nothing (no query); the others are routed one by one on their latest message."""
    latest: dict[int, Message] = {}
    for message in messages:
        conversation = message.conversation
        if message.direction != Message.Direction.INBOUND or conversation.contact.is_group:
            continue
        if conversation.queue_id is not None and conversation.pk not in reopened:
            continue
        latest[conversation.pk] = message
    for pk, message in latest.items():
        if not session_has_queues(message.conversation.session_id):
            continue
        try:
            _route(pk, message.body if message.kind == Message.Kind.TEXT else "", pk in reopened)
        except Exception:
            # The customer's message is stored; a routing failure must not undo or retry it.
            logger.exception("menu bot failed conversation=%s", pk)


def _route(conversation_id: int, text: str, reopened: bool) -> None:
    entered: Queue | None = None
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(no_key=True, of=("self",))
            .select_related("contact", "session", "assigned_to", "queue")
            .get(pk=conversation_id)
        )
        if conversation.queue_id is not None and not reopened:
            return  # routed meanwhile
        queues = list(Queue.objects.filter(session_id=conversation.session_id))
        conf = QueueSettings.objects.filter(session_id=conversation.session_id).first()
        conf = conf or QueueSettings(session_id=conversation.session_id)
        restart = False
        if conversation.queue_id is not None:  # reopened by the customer
            if not (conf.menu_on_reopen and conf.menu_enabled and len(queues) > 1):
                entered = conversation.queue  # back in its queue: waits for an agent
            else:
                _reset(conversation)
                restart = True
        if entered is None:
            entered = _step(conversation, queues, conf, text, restart=restart)
    if entered is not None and entered.assignment == Queue.Assignment.ROUND_ROBIN:
        conversation_auto_assign(conversation_id=conversation_id)


def _reset(conversation: Conversation) -> None:
    """A closed conversation the customer reopened starts over at the menu."""
    if conversation.assigned_to_id is not None:
        routing_event_record(
            conversation=conversation,
            kind=ConversationEvent.Kind.ASSIGNED,
            actor=None,
            from_user=conversation.assigned_to,
        )
    routing_event_record(
        conversation=conversation,
        kind=ConversationEvent.Kind.QUEUE,
        actor=None,
        from_queue=conversation.queue,
    )
    conversation.queue = None
    conversation.assigned_to = None
    conversation.menu_attempts = 0
    conversation.menu_parent = None
    conversation.save(
        update_fields=["queue", "assigned_to", "menu_attempts", "menu_parent", "updated_at"]
    )
    events.conversation_updated(conversation)


def _step(
    conversation: Conversation,
    queues: list[Queue],
    conf: QueueSettings,
    text: str,
    *,
    restart: bool = False,
) -> Queue | None:
    """One turn of the menu; the queue the conversation entered, if it did. ``restart``:
    a closed conversation reopened by the customer, menu again."""
    if not queues:
        return None
    by_id = {q.pk: q for q in queues}
    if len(queues) == 1:
        return _enter(conversation, queues[0])
    default = by_id.get(conf.default_queue_id or 0) or _first_leaf(queues)
    if not conf.menu_enabled:
        return _enter(conversation, default)
    parent = by_id.get(conversation.menu_parent_id or 0)
    options = [q for q in queues if q.parent_id == (parent.pk if parent else None)]
    if conversation.menu_attempts == 0 and not restart and _team_wrote_first(conversation):
        # An agent opened it (writing first): the customer is answering them, not
        # choosing a department.
        return _enter(conversation, default)
    if conversation.menu_attempts == 0:  # a new conversation: the menu, first
        _menu(conversation, conf, options, parent, attempts=1)
        return None
    choice = _match(text, options)
    if choice is not None:
        children = [q for q in queues if q.parent_id == choice.pk]
        if children and parent is None:
            _menu(conversation, conf, children, choice, attempts=1)
            return None
        return _enter(conversation, choice)
    if conversation.menu_attempts >= max(conf.menu_max_attempts, 1):
        return _enter(conversation, default)
    _menu(conversation, conf, options, parent, attempts=conversation.menu_attempts + 1)
    return None


def _team_wrote_first(conversation: Conversation) -> bool:
    return Message.objects.filter(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        sent_by__isnull=False,
    ).exists()


def _first_leaf(queues: list[Queue]) -> Queue:
    parents = {q.parent_id for q in queues}
    return next(q for q in queues if q.pk not in parents)


def _menu(
    conversation: Conversation,
    conf: QueueSettings,
    options: list[Queue],
    parent: Queue | None,
    *,
    attempts: int,
) -> None:
    conversation.menu_attempts = attempts
    conversation.menu_parent = parent
    conversation.save(update_fields=["menu_attempts", "menu_parent", "updated_at"])
    greeting = conf.menu_greeting if parent is None else ""
    bot_message_queue(
        conversation=conversation,
        text=menu_text(greeting, options, parent.name if parent else ""),
    )


def _enter(conversation: Conversation, queue: Queue) -> Queue:
    conversation_queue_set(conversation=conversation, queue=queue, by=None)
    return queue


def conversation_queue_set(
    *, conversation: Conversation, queue: Queue | None, by: User | None
) -> Conversation:
    """Put the conversation in ``queue`` (of its number), recorded and shown live. The
    caller assigns it afterwards (``conversation_auto_assign``) if the queue does."""
    with transaction.atomic():
        # The queue it is in now, from its locked row: the caller's copy may be older.
        current = (
            Conversation.objects.select_for_update(no_key=True)
            .filter(pk=conversation.pk)
            .values_list("queue_id", flat=True)
            .first()
        )
        previous = None
        if current is not None:
            known = conversation.queue if conversation.queue_id == current else None
            previous = known or Queue.objects.filter(pk=current).first()
        conversation.queue = queue
        conversation.menu_attempts = 0
        conversation.menu_parent = None
        conversation.save(update_fields=["queue", "menu_attempts", "menu_parent", "updated_at"])
        if (previous.pk if previous else None) != (queue.pk if queue else None):
            routing_event_record(
                conversation=conversation,
                kind=ConversationEvent.Kind.QUEUE,
                actor=by,
                from_queue=previous,
                to_queue=queue,
            )
        events.conversation_updated(conversation)
    logger.info(
        "conversation queue id=%s queue=%s by=%s",
        conversation.pk,
        queue.pk if queue else None,
        by.pk if by else None,
    )
    return conversation


def bot_message_queue(*, conversation: Conversation, text: str) -> Message:
    """The number's bot writes to the customer: into the outbox like an agent's reply,
    stored as automatic and sent by nobody."""
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            wa_id=new_message_id(),
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.PENDING,
            kind=Message.Kind.TEXT,
            body=text,
            automatic=True,
            auto_reason="menu",
        )
        _conversations_advance([message], live=True)
        # The event shows these: no query for them.
        message.conversation.contact = conversation.contact
        message.conversation.session = conversation.session
        message.conversation.assigned_to = conversation.assigned_to
        events.message_created(message)
        events.worker_wakeup(conversation.session_id)
    logger.info("bot message queued id=%s conversation=%s", message.pk, conversation.pk)
    return message
