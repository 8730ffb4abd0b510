"""Automatic assignment: agents' availability, round-robin within a queue, the per-agent
cap, and the record of every assignment and queue change (the thread's system lines).

Every automatic assignment on a number runs under that number's row lock, so two
workers or web processes never assign one conversation twice, and each picks the agent
with the fewest open conversations as the others left them (balanced under load).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from conversations.models import (
    AgentPresence,
    Conversation,
    ConversationEvent,
    Queue,
    QueueAgent,
    QueueSettings,
)
from realtime import events
from vbcrm.types import User
from whatsapp.models import SessionAgent, WhatsAppSession

logger = logging.getLogger(__name__)

# How many waiting conversations one drain looks at (the rest wait for the next one).
DRAIN_LIMIT = 500


# --- The record ------------------------------------------------------------------------


def routing_event_record(
    *,
    conversation: Conversation,
    kind: str,
    actor: User | None,
    from_user: User | None = None,
    to_user: User | None = None,
    from_queue: Queue | None = None,
    to_queue: Queue | None = None,
) -> ConversationEvent:
    """Record an assignment (``kind`` assigned) or queue change on the conversation and
    show it, live, to everyone with its thread open. ``actor`` None: done automatically."""
    event = ConversationEvent.objects.create(
        conversation=conversation,
        kind=kind,
        actor=actor,
        from_user=from_user,
        to_user=to_user,
        from_queue=from_queue,
        to_queue=to_queue,
    )
    events.conversation_event(event)
    return event


# --- Availability ----------------------------------------------------------------------


def _away_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.VBCRM_AWAY_AFTER_SECONDS)


# The user's side of AgentPresence.user: where Django keeps the row read with a user.
_PRESENCE = AgentPresence._meta.get_field("user").remote_field


def presence_get(*, user: User, loaded: bool = False) -> AgentPresence:
    """The user's presence. ``loaded``: the one read with the user if it was (a
    request's user is, by vbcrm.auth: the header reads it on every page), rather than a
    read of its own."""
    presence: AgentPresence | None
    if loaded and _PRESENCE.is_cached(user):
        presence = _PRESENCE.get_cached_value(user)  # type: ignore[assignment]  # None: none
    else:
        presence = AgentPresence.objects.filter(user=user).first()
    return presence or AgentPresence(user=user, available=False)


def presence_set(*, user: User, available: bool) -> AgentPresence:
    """The agent says they take (or stop taking) automatic assignments. Becoming
    available hands them the conversations waiting in their queues."""
    with transaction.atomic():
        presence, _created = AgentPresence.objects.select_for_update().get_or_create(user=user)
        presence.available = available
        if available and presence.sockets <= 0:
            # Set from a page that may close: the away timer starts now.
            presence.last_socket_closed_at = timezone.now()
        presence.save(update_fields=["available", "last_socket_closed_at", "changed_at"])
    logger.info("agent presence user=%s available=%s", user.pk, available)
    if available:
        session_ids = set(
            QueueAgent.objects.filter(user=user).values_list("queue__session_id", flat=True)
        )
        for session_id in sorted(session_ids):
            queue_drain(session_id=session_id)
    return presence


def presence_socket_opened(*, user_id: int) -> None:
    """One more live tab of the agent (realtime.consumers)."""
    updated = AgentPresence.objects.filter(user_id=user_id).update(sockets=F("sockets") + 1)
    if not updated:
        AgentPresence.objects.get_or_create(user_id=user_id, defaults={"sockets": 1})


def presence_socket_closed(*, user_id: int) -> None:
    AgentPresence.objects.filter(user_id=user_id).update(
        sockets=Greatest(F("sockets") - 1, Value(0)), last_socket_closed_at=timezone.now()
    )


def _expired() -> Q:
    """Available in name only: no live tab for longer than VBCRM_AWAY_AFTER_SECONDS."""
    return Q(sockets__lte=0, last_socket_closed_at__lt=_away_cutoff())


def presence_expire() -> int:
    """Agents whose last tab closed a while ago go away (the worker calls this)."""
    count = AgentPresence.objects.filter(_expired(), available=True).update(available=False)
    if count:
        logger.info("agents gone away count=%d", count)
    return count


# --- Round-robin ------------------------------------------------------------------------


def _candidates(session: WhatsAppSession, queue: Queue, cap: int) -> QuerySet[QueueAgent]:
    """The queue's agents who take work now, fewest open conversations on this number
    first, then the one assigned least recently."""
    open_count = (
        Conversation.objects.filter(session=session, assigned_to=OuterRef("user_id"))
        .exclude(status=Conversation.Status.CLOSED)
        .order_by()
        .values("assigned_to")
        .annotate(n=Count("pk"))
        .values("n")
    )
    expired = AgentPresence.objects.filter(_expired()).values("user_id")
    members = SessionAgent.objects.filter(session=session).values("user_id")
    qs = (
        QueueAgent.objects.filter(
            Q(user_id=session.owner_id) | Q(user_id__in=members),
            queue=queue,
            user__is_active=True,
            user__presence__available=True,
        )
        .exclude(user_id__in=expired)
        .annotate(open_count=Coalesce(Subquery(open_count), 0, output_field=IntegerField()))
    )
    if cap:
        qs = qs.filter(open_count__lt=cap)
    return qs.order_by("open_count", F("last_assigned_at").asc(nulls_first=True), "user_id")


def conversation_auto_assign(*, conversation_id: int) -> User | None:
    """Give a waiting conversation (open, in a round-robin queue, nobody's) to the next
    agent, if one is available under the cap. Returns the agent, or None (it waits)."""
    with transaction.atomic():
        session_id = (
            Conversation.objects.filter(pk=conversation_id).values_list("session_id", flat=True)
        ).first()
        if session_id is None:
            return None
        session = WhatsAppSession.objects.select_for_update(no_key=True).get(pk=session_id)
        conversation = (
            Conversation.objects.select_for_update(no_key=True, of=("self",))
            .select_related("contact", "queue")
            .get(pk=conversation_id)
        )
        queue = conversation.queue
        if (
            queue is None
            or conversation.assigned_to_id is not None
            or conversation.status == Conversation.Status.CLOSED
            or queue.assignment != Queue.Assignment.ROUND_ROBIN
        ):
            return None
        conf = QueueSettings.objects.filter(session=session).first()
        pick = _candidates(session, queue, conf.agent_cap if conf else 0).first()
        if pick is None:
            return None
        agent = pick.user
        conversation.assigned_to = agent
        conversation.session = session
        conversation.save(update_fields=["assigned_to", "updated_at"])
        QueueAgent.objects.filter(pk=pick.pk).update(last_assigned_at=timezone.now())
        routing_event_record(
            conversation=conversation,
            kind=ConversationEvent.Kind.ASSIGNED,
            actor=None,
            to_user=agent,
            to_queue=queue,
        )
        events.conversation_updated(conversation)
    logger.info("conversation auto-assigned id=%s user=%s", conversation_id, agent.pk)
    return agent


def queue_drain(*, session_id: int) -> int:
    """Assign the number's waiting conversations, oldest first, while its agents have room
    (an agent closed one, was given another, or came back). Returns how many."""
    waiting = (
        Conversation.objects.filter(
            session_id=session_id,
            assigned_to__isnull=True,
            queue__assignment=Queue.Assignment.ROUND_ROBIN,
        )
        .exclude(status=Conversation.Status.CLOSED)
        .order_by("pk")
        .values_list("pk", "queue_id")[:DRAIN_LIMIT]
    )
    full: set[int] = set()
    assigned = 0
    for pk, queue_id in list(waiting):
        if queue_id in full:
            continue
        if conversation_auto_assign(conversation_id=pk) is None:
            full.add(queue_id)  # nobody there takes work now: its later ones wait too
        else:
            assigned += 1
    return assigned


def after_assignment_change(*, conversation: Conversation, previous_id: int | None) -> None:
    """An agent gave a conversation away, or closed it: room opened up on the number.
    Runs after the change's transaction: the drain takes the number's lock first."""
    if previous_id is None and conversation.status != Conversation.Status.CLOSED:
        return
    session_id = conversation.session_id
    transaction.on_commit(lambda: queue_drain(session_id=session_id))
