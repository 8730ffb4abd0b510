"""Reads of queues, with the access rule: a number's owner sees and manages all its
queues; an agent sees the queues of that number they belong to, and manages none."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
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


_EVENT_USERS = ("actor", "from_user", "to_user")
_EVENT_QUEUES = ("from_queue", "to_queue")


def conversation_events(
    *,
    conversation_id: int,
    since=None,
    until=None,
    users: Iterable[Any] | None = None,
    queues: Iterable[Queue] | None = None,
) -> list[ConversationEvent]:
    """A conversation's assignments and queue changes (from ``since``, before ``until``),
    oldest first, with what their system lines show. ``users`` and ``queues``: the
    people and queues the caller has read already (a thread page: its number's members
    and queues); the events take theirs from there, and read the others (an agent gone
    since, say) in one query each, only when there are any. Without them the events
    are read joined with all five (composing those joins cost the ORM about 1 ms, most
    often for no event at all)."""
    qs = ConversationEvent.objects.filter(SYSTEM_LINES, conversation_id=conversation_id)
    if users is None or queues is None:
        qs = qs.select_related(*_EVENT_USERS, *_EVENT_QUEUES)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    events = list(qs.order_by("created_at", "pk")[:200])
    if users is not None and queues is not None and events:
        _attach(events, _EVENT_USERS, get_user_model(), users)
        _attach(events, _EVENT_QUEUES, Queue, queues)
    return events


def _attach(
    events: list[ConversationEvent], names: tuple[str, ...], model: Any, known: Iterable[Any]
) -> None:
    """Each event's ``names`` (foreign keys to ``model``) from ``known``, the rest read."""
    by_id = {row.pk: row for row in known}
    missing = {getattr(e, f"{name}_id") for e in events for name in names} - {None} - set(by_id)
    if missing:
        by_id.update((row.pk, row) for row in model._base_manager.filter(pk__in=missing))
    for event in events:
        for name in names:
            row = by_id.get(getattr(event, f"{name}_id"))
            if row is not None:
                setattr(event, name, row)
