"""Reads of queues, with the access rule: a number's owner sees and manages all its
queues; an agent sees the queues of that number they belong to, and manages none."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from conversations.models import ConversationEvent, Queue, QueueAgent
from vbcrm.types import AnyUser
from whatsapp.models import SessionAgent, WhatsAppSession
from whatsapp.selectors import seen_ids


def queue_visible_list(
    *, user: AnyUser, sessions: Iterable[WhatsAppSession] | None = None
) -> QuerySet[Queue]:
    """The queues ``user`` sees: all of their own numbers', and the ones they are in of
    the numbers they work. ``sessions``: the numbers ``user`` sees, when the caller has
    read them (``sessions_seen``): the statement then names them, not the rule again."""
    if not user.is_authenticated:
        return Queue.objects.none()
    own: Any = Q(session__owner=user)
    works: Any = SessionAgent.objects.filter(user=user).values("session_id")
    numbers = None if sessions is None else list(sessions)
    ids = seen_ids(user, numbers)
    if isinstance(ids, list):  # numbers read for user: their owner is known
        owned = {s.pk for s in numbers or () if s.owner_id == user.pk}
        own = Q(session_id__in=sorted(owned))
        works = [pk for pk in ids if pk not in owned]
    return (
        Queue.objects.filter(
            own
            | Q(session_id__in=works, pk__in=QueueAgent.objects.filter(user=user).values("queue"))
        )
        .select_related("session")
        .order_by("session__name", "position", "pk")
    )


def queue_get(*, user: AnyUser, queue_id: int) -> Queue:
    """A queue ``user`` sees; ``Queue.DoesNotExist`` otherwise."""
    return queue_visible_list(user=user).get(pk=queue_id)


def queue_for_conversation(*, user: AnyUser, session_id: int, queue_id: int) -> Queue:
    """A queue of this number that ``user`` may put a conversation in (any queue of a
    number they work: an agent hands work over to other departments)."""
    if not user.is_authenticated:
        raise Queue.DoesNotExist
    return Queue.objects.get(pk=queue_id, session_id=session_id)


def queue_manage_list(*, user: AnyUser) -> QuerySet[Queue]:
    """The queues ``user`` may change: their own numbers'."""
    if not user.is_authenticated:
        return Queue.objects.none()
    return (
        Queue.objects.filter(session__owner=user)
        .select_related("session", "parent")
        .prefetch_related(Prefetch("agents"))
        .order_by("session__name", "position", "pk")
    )


def queue_manage_get(*, user: AnyUser, queue_id: int) -> Queue:
    return queue_manage_list(user=user).get(pk=queue_id)


def session_queues(*, session_id: int) -> list[Queue]:
    """A number's queues in menu order (what a conversation can be moved to)."""
    return list(Queue.objects.filter(session_id=session_id).order_by("position", "pk"))


# The events a thread shows as system lines (the others are the reports' records), and
# the automatic close of an idle conversation (a close by nobody).
SYSTEM_LINE_KINDS = (ConversationEvent.Kind.ASSIGNED, ConversationEvent.Kind.QUEUE)
SYSTEM_LINES = Q(kind__in=SYSTEM_LINE_KINDS) | Q(
    kind=ConversationEvent.Kind.CLOSED, actor__isnull=True
)


def conversation_events(*, conversation_id: int, since=None, until=None) -> list[ConversationEvent]:
    """A conversation's assignments and queue changes (from ``since``, before ``until``),
    oldest first, with what their system lines show."""
    qs = ConversationEvent.objects.filter(
        SYSTEM_LINES, conversation_id=conversation_id
    ).select_related("actor", "from_user", "to_user", "from_queue", "to_queue")
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return list(qs.order_by("created_at", "pk")[:200])
