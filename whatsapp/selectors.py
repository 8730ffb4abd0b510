"""Reads of numbers, and THE access rule every page, API call and socket uses.

A user sees a number (and all its conversations) when they own it or are one
of its agents. Nobody else sees anything of it. Staff see everything through
Django admin only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from vbcrm.types import AnyUser, User
from whatsapp.models import KeywordRule, NumberSettings, SessionAgent, WhatsAppSession


def _seen(user: AnyUser) -> QuerySet[WhatsAppSession]:
    """The numbers ``user`` may see: the rule itself."""
    if not user.is_authenticated:
        return WhatsAppSession.objects.none()
    return WhatsAppSession.objects.filter(
        Q(owner=user) | Q(pk__in=SessionAgent.objects.filter(user=user).values("session_id"))
    )


def visible_session_ids(user: AnyUser) -> QuerySet:
    """Ids of the numbers ``user`` may see, as a subquery (no query runs here)."""
    return _seen(user).values("pk")


def session_list(*, user: AnyUser) -> QuerySet[WhatsAppSession]:
    # the rule as the query's own condition, not an id subquery of it: the same
    # numbers, and half the ORM's work composing the statement (about 1 ms a page)
    return _seen(user).select_related("owner")


# The mark sessions_seen leaves on each number it read: the id of the user it was read for.
_SEEN_BY = "_seen_by"


def sessions_seen(*, user: AnyUser, related: tuple[str, ...] = ()) -> list[WhatsAppSession]:
    """The numbers ``user`` sees, by name (``related`` joined in), each marked as read
    with the rule for ``user``. A page that reads them first hands them to the other
    selectors (``seen_ids``), whose statements then name them by id rather than
    compose the rule again."""
    qs = _seen(user)
    if related:
        qs = qs.select_related(*related)
    rows = list(qs.order_by("name"))
    for row in rows:
        setattr(row, _SEEN_BY, user.pk)
    return rows


def seen_ids(user: AnyUser, sessions: Iterable[WhatsAppSession] | None) -> Any:
    """For a ``session_id__in``: the ids of ``sessions`` when ``sessions_seen`` read
    every one of them for ``user``; else (none given or none there, or any read
    otherwise or for someone else) the rule as a subquery. Numbers handed around are
    thus never what decides what one may see. A list of ids costs the ORM about half
    as much to compose as the rule (0.3–0.5 ms a statement on the bench's machine)."""
    if sessions is None:
        return visible_session_ids(user)
    numbers = list(sessions)
    if not numbers or any(getattr(s, _SEEN_BY, None) != user.pk for s in numbers):
        return visible_session_ids(user)
    return [s.pk for s in numbers]


def session_get(*, user: AnyUser, session_id: int) -> WhatsAppSession:
    """The number if ``user`` may see it; ``DoesNotExist`` otherwise (never reveal it exists)."""
    return session_list(user=user).get(pk=session_id)


def session_owned_list(*, user: User) -> QuerySet[WhatsAppSession]:
    """Numbers ``user`` may manage (link, log out, delete, add agents): their own."""
    return WhatsAppSession.objects.filter(owner=user)


def user_can_see_session(user: AnyUser, session_id: int) -> bool:
    return session_list(user=user).filter(pk=session_id).exists()


def session_table() -> list[WhatsAppSession]:
    """Every number, for operators (manage.py whatsapp_sessions)."""
    return list(WhatsAppSession.objects.select_related("owner").order_by("owner__username", "name"))


def session_find(*, name: str, owner_username: str | None = None) -> WhatsAppSession:
    """A number by name (and owner when names repeat across owners), for operator commands.

    Raises ``WhatsAppSession.DoesNotExist`` or ``MultipleObjectsReturned``.
    """
    qs = WhatsAppSession.objects.select_related("owner").filter(name=name)
    if owner_username:
        qs = qs.filter(owner__username=owner_username)
    return qs.get()


def session_members(*, session: WhatsAppSession) -> list[User]:
    """Everyone who works ``session``'s inbox (owner first, then agents by name):
    the people a conversation can be assigned or transferred to."""
    agents = SessionAgent.objects.filter(session=session).values("user_id")
    users = list(
        get_user_model()
        .objects.filter(Q(pk=session.owner_id) | Q(pk__in=agents), is_active=True)
        .order_by("first_name", "username")
    )
    users.sort(key=lambda u: u.pk != session.owner_id)
    return users


def session_member_get(*, session: WhatsAppSession, user_id: int) -> User:
    """A user who works ``session``'s inbox (its owner or an agent), to assign work to;
    the user model's ``DoesNotExist`` for anyone else."""
    agents = SessionAgent.objects.filter(session=session).values("user_id")
    return (
        get_user_model()
        .objects.filter(Q(pk=session.owner_id) | Q(pk__in=agents), is_active=True)
        .get(pk=user_id)
    )


def session_get_by_id(*, session_id: int) -> WhatsAppSession | None:
    """A number by id, or None if it is gone (for the worker, which holds its lease; no
    access rule applies there)."""
    return WhatsAppSession.objects.filter(pk=session_id).first()


def keyword_rule_owned_get(*, user: User, rule_id: int) -> KeywordRule | None:
    """One of the keyword rules of the numbers ``user`` owns, or None."""
    return KeywordRule.objects.filter(pk=rule_id, session__owner=user).first()


def keyword_rule_list(*, session: WhatsAppSession) -> list[KeywordRule]:
    """A number's keyword rules, in the order they are tried."""
    return list(KeywordRule.objects.filter(session=session))


def number_settings_list(*, session_ids: list[int]) -> list[NumberSettings]:
    return list(NumberSettings.objects.filter(session_id__in=session_ids))
