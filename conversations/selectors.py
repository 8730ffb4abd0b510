"""Every read of contacts, conversations and messages, with the access rule applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from conversations.models import Contact, Conversation, Message, QuickReply
from vbcrm.types import AnyUser, User
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import visible_session_ids


@dataclass(frozen=True)
class ConversationFilters:
    scope: str = "all"  # all | mine | unassigned
    status: str = ""  # "" | open | pending | closed
    session_id: int | None = None
    search: str = ""
    queue_id: int | None = None


def conversation_queryset(*, user: AnyUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(session_id__in=visible_session_ids(user)).select_related(
        "contact", "session", "assigned_to"
    )


def conversation_list(
    *,
    user: User,
    filters: ConversationFilters | None = None,
    before: tuple | None = None,
    limit: int = 50,
    sessions: Mapping[int, WhatsAppSession] | None = None,
) -> list[Conversation]:
    """Newest activity first. ``before`` is the cursor ``(last_message_at, id)`` of the
    last row of the previous page. ``sessions``: the numbers ``user`` sees, by id, when
    the caller has them already (the inbox page lists them for its filter): each row
    takes its number from there instead of joining it in (a number's row is wide, and
    the page's rows share a few)."""
    f = filters or ConversationFilters()
    qs = conversation_queryset(user=user)
    if sessions is not None:
        qs = qs.select_related(None).select_related("contact", "assigned_to")
    if f.scope == "mine":
        qs = qs.filter(assigned_to=user)
    elif f.scope == "unassigned":
        qs = qs.filter(assigned_to__isnull=True)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.session_id:
        qs = qs.filter(session_id=f.session_id)
    if f.queue_id:
        qs = qs.filter(queue_id=f.queue_id)
    if f.search:
        term = f.search.strip()
        text_match = Message.objects.filter(conversation=OuterRef("pk"), body__icontains=term)
        qs = qs.filter(
            Q(contact__saved_name__icontains=term)
            | Q(contact__push_name__icontains=term)
            | Q(contact__phone__icontains=term)
            | Exists(text_match)
        )
    if before is not None:
        when, pk = before
        qs = qs.filter(Q(last_message_at__lt=when) | Q(last_message_at=when, pk__lt=pk))
    rows = list(qs.order_by("-last_message_at", "-pk")[:limit])
    if sessions is not None:
        for row in rows:
            # A number missing here (shared with the user after ``sessions`` was read)
            # is left to load on first use.
            if row.session_id in sessions:
                row.session = sessions[row.session_id]
    return rows


def conversation_get(*, user: AnyUser, conversation_id: int) -> Conversation:
    """The conversation if ``user`` may see it; ``Conversation.DoesNotExist`` otherwise."""
    return conversation_queryset(user=user).get(pk=conversation_id)


def conversation_access(*, user: AnyUser, conversation_id: int) -> Conversation:
    """The conversation's own row if ``user`` may see it; ``Conversation.DoesNotExist``
    otherwise. For reads that need only its id: nothing is joined in, so its contact,
    number and agent each cost a query if read."""
    return Conversation.objects.filter(session_id__in=visible_session_ids(user)).get(
        pk=conversation_id
    )


def conversations_changed_since(*, user: AnyUser, since, limit: int = 200) -> list[Conversation]:
    """For a reconnecting page: conversations that changed after ``since``."""
    return list(
        conversation_queryset(user=user)
        .filter(updated_at__gt=since)
        .order_by("-updated_at")[:limit]
    )


def message_list(
    *,
    conversation: Conversation,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
    related: bool = True,
) -> list[Message]:
    """A page of a thread, oldest first in the returned list. Cursor by id, never OFFSET:
    ``before_id`` pages back in time, ``after_id`` catches up after a reconnect.
    ``related=False`` leaves out the sender and the quoted message, for readers that
    want only their ids."""
    qs = Message.objects.filter(conversation=conversation)
    if related:
        qs = qs.select_related("sent_by", "reply_to")
    if after_id is not None:
        return list(qs.filter(pk__gt=after_id).order_by("pk")[:limit])
    if before_id is not None:
        qs = qs.filter(pk__lt=before_id)
    page = list(qs.order_by("-pk")[:limit])
    page.reverse()
    return page


def message_list_changed_since(
    *, conversation: Conversation, since, up_to_id: int, limit: int = 200
) -> list[Message]:
    """For a reconnecting page: messages it already shows (id up to ``up_to_id``)
    whose ticks or media changed after ``since``."""
    return list(
        Message.objects.filter(conversation=conversation, pk__lte=up_to_id, updated_at__gt=since)
        .select_related("sent_by", "reply_to")
        .order_by("pk")[:limit]
    )


def unread_counts(*, user: AnyUser, limit: int = 1000) -> dict[int, int]:
    """Unread messages per conversation the user may see (only the ones with any),
    so the page can keep the tab title's total without loading every row."""
    rows = (
        Conversation.objects.filter(session_id__in=visible_session_ids(user), unread_count__gt=0)
        .order_by("-last_message_at")
        .values_list("pk", "unread_count")[:limit]
    )
    return dict(rows)


def message_get(*, user: AnyUser, message_id: int) -> Message:
    return Message.objects.select_related("conversation").get(
        pk=message_id, conversation__session_id__in=visible_session_ids(user)
    )


def contact_get(*, user: AnyUser, contact_id: int) -> Contact:
    return Contact.objects.get(pk=contact_id, session_id__in=visible_session_ids(user))


def sessions_with_work(*, session_ids: list[int]) -> set[int]:
    """Which of these numbers have replies waiting to go out or read receipts owed."""
    if not session_ids:
        return set()
    outbox = Message.objects.filter(
        conversation__session_id__in=session_ids,
        status=Message.Status.PENDING,
        direction=Message.Direction.OUTBOUND,
    ).values_list("conversation__session_id", flat=True)
    receipts = Message.objects.filter(
        conversation__session_id__in=session_ids, receipt_pending=True
    ).values_list("conversation__session_id", flat=True)
    return set(outbox.distinct()) | set(receipts.distinct())


def quick_reply_list(*, user: AnyUser) -> list[QuickReply]:
    """The user's own quick replies, by shortcut."""
    if not user.is_authenticated:
        return []
    return list(QuickReply.objects.filter(owner=user).order_by("shortcut"))


def quick_reply_get(*, user: AnyUser, quick_reply_id: int) -> QuickReply:
    """One of the user's quick replies; ``QuickReply.DoesNotExist`` for anyone else's."""
    return QuickReply.objects.get(pk=quick_reply_id, owner_id=user.pk)
