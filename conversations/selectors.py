"""Every read of contacts, conversations and messages, with the access rule applied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from conversations import search_index
from conversations.models import (
    Contact,
    Conversation,
    GroupParticipant,
    Message,
    NoteMention,
    QuickReply,
    Tag,
)
from conversations.serializers import tag_data
from vbcrm.types import AnyUser, User
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import seen_ids, visible_session_ids


@dataclass(frozen=True)
class ConversationFilters:
    scope: str = "all"  # all | mine | unassigned
    status: str = ""  # "" | open | pending | closed
    session_id: int | None = None
    search: str = ""
    tag_id: int | None = None  # on the conversation or on its contact
    kind: str = ""  # "" | groups | direct
    queue_id: int | None = None


# A number that ignores groups (WhatsAppSession.ignore_groups) hides their conversations.
_HIDDEN_GROUPS = Q(contact__is_group=True, session__ignore_groups=True)


def _hidden_groups(sessions: Iterable[WhatsAppSession] | None) -> Q | None:
    """The conversations ``_HIDDEN_GROUPS`` hides, among those of ``sessions`` when the
    caller has read them (None: none of them ignores groups, nothing to join for)."""
    if sessions is None:
        return _HIDDEN_GROUPS
    ignoring = [s.pk for s in sessions if s.ignore_groups]
    return Q(contact__is_group=True, session_id__in=ignoring) if ignoring else None


def conversation_queryset(
    *, user: AnyUser, sessions: Iterable[WhatsAppSession] | None = None
) -> QuerySet[Conversation]:
    return Conversation.objects.filter(session_id__in=seen_ids(user, sessions)).select_related(
        "contact", "session", "assigned_to"
    )


def conversation_list(
    *,
    user: User,
    filters: ConversationFilters | None = None,
    before: tuple | None = None,
    limit: int = 50,
    sessions: Mapping[int, WhatsAppSession] | None = None,
    tags: bool = True,
    contact_only: bool = False,
) -> list[Conversation]:
    """Newest activity first. ``before`` is the cursor ``(last_message_at, id)`` of the
    last row of the previous page. ``sessions``: the numbers ``user`` sees, by id, when
    the caller has them already (the inbox page lists them for its filter): each row
    takes its number from there instead of joining it in (a number's row is wide, and
    the page's rows share a few), and only those that ignore groups are checked for
    group chats (no join with the numbers: planning it cost more than the query).
    ``tags``: load the rows' tags (two queries), which the list's rows show.
    ``contact_only``: the rows carry their contact, not their number and agent (a
    reader of their ids only, as the API: joined, they are most of a row's columns)."""
    f = filters or ConversationFilters()
    qs = conversation_queryset(user=user, sessions=None if sessions is None else sessions.values())
    if contact_only:
        qs = qs.select_related(None).select_related("contact")
    elif sessions is not None:
        qs = qs.select_related(None).select_related("contact", "assigned_to")
    if f.scope == "mine":
        qs = qs.filter(assigned_to=user)
    elif f.scope == "unassigned":
        qs = qs.filter(assigned_to__isnull=True)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.session_id:
        qs = qs.filter(session_id=f.session_id)
    if f.tag_id:
        qs = qs.filter(
            Exists(
                Tag.conversations.through.objects.filter(conversation=OuterRef("pk"), tag=f.tag_id)
            )
            | Exists(Tag.contacts.through.objects.filter(contact=OuterRef("contact"), tag=f.tag_id))
        )
    if f.kind == "groups":
        qs = qs.filter(contact__is_group=True, session__ignore_groups=False)
    else:
        hidden = _hidden_groups(None if sessions is None else sessions.values())
        if hidden is not None:
            qs = qs.exclude(hidden)
        if f.kind == "direct":
            qs = qs.filter(contact__is_group=False)
    if f.queue_id:
        qs = qs.filter(queue_id=f.queue_id)
    if f.search:
        term = f.search.strip()
        match = (
            Q(contact__saved_name__icontains=term)
            | Q(contact__group_subject__icontains=term)
            | Q(contact__push_name__icontains=term)
            | Q(contact__phone__icontains=term)
        )
        terms = search_index.words(term)
        if terms:
            # The search page's index; the last word as typed so far (a prefix).
            own = Message.objects.filter(conversation=OuterRef("pk"))
            match |= Q(Exists(search_index.matching(own, terms, prefix=True)))
        qs = qs.filter(match)
    if before is not None:
        when, pk = before
        qs = qs.filter(Q(last_message_at__lt=when) | Q(last_message_at=when, pk__lt=pk))
    rows = list(qs.order_by("-last_message_at", "-pk")[:limit])
    if tags:
        with_tags(rows)
    if sessions is not None:
        for row in rows:
            # A number missing here (shared with the user after ``sessions`` was read)
            # is left to load on first use.
            if row.session_id in sessions:
                row.session = sessions[row.session_id]
    return rows


def conversation_get(
    *, user: AnyUser, conversation_id: int, sessions: Iterable[WhatsAppSession] | None = None
) -> Conversation:
    """The conversation if ``user`` may see it; ``Conversation.DoesNotExist`` otherwise.
    ``sessions``: the numbers ``user`` sees, when the caller has read them."""
    return conversation_queryset(user=user, sessions=sessions).get(pk=conversation_id)


def conversation_access(*, user: AnyUser, conversation_id: int) -> Conversation:
    """The conversation's own row if ``user`` may see it; ``Conversation.DoesNotExist``
    otherwise. For reads that need only its id: nothing is joined in, so its contact,
    number and agent each cost a query if read."""
    return Conversation.objects.filter(session_id__in=visible_session_ids(user)).get(
        pk=conversation_id
    )


def conversations_changed_since(*, user: AnyUser, since, limit: int = 200) -> list[Conversation]:
    """For a reconnecting page: conversations that changed after ``since``."""
    rows = list(
        conversation_queryset(user=user)
        .filter(updated_at__gt=since)
        .order_by("-updated_at")[:limit]
    )
    return with_tags(rows)


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


def unread_counts(
    *, user: AnyUser, limit: int = 1000, sessions: Iterable[WhatsAppSession] | None = None
) -> dict[int, int]:
    """Unread messages per conversation the user may see (only the ones with any),
    so the page can keep the tab title's total without loading every row.
    ``sessions``: the numbers ``user`` sees, when the caller has them (the inbox page
    lists them): only the rows of numbers that ignore groups are then checked for a
    group chat (else every unread row is joined with its contact and its number)."""
    qs = Conversation.objects.filter(session_id__in=seen_ids(user, sessions), unread_count__gt=0)
    hidden = _hidden_groups(sessions)
    if hidden is not None:
        qs = qs.exclude(hidden)
    rows = qs.order_by("-last_message_at").values_list("pk", "unread_count")[:limit]
    return dict(rows)


def message_get(*, user: AnyUser, message_id: int) -> Message:
    return Message.objects.select_related("conversation").get(
        pk=message_id, conversation__session_id__in=visible_session_ids(user)
    )


def contact_get(*, user: AnyUser, contact_id: int) -> Contact:
    return Contact.objects.get(pk=contact_id, session_id__in=visible_session_ids(user))


@dataclass(frozen=True)
class Member:
    """A group member as the contact pane shows them."""

    name: str
    phone: str
    is_admin: bool


def group_participants(*, group: Contact) -> list[Member]:
    """A group's members as WhatsApp last listed them, admins first, each named by the
    agents' name for that person, else the name WhatsApp gave, else the name on their
    latest message in the group, else their WhatsApp name, else the phone. Three
    queries, whatever the group's size."""
    members = list(GroupParticipant.objects.filter(group=group).order_by("-is_admin", "pk"))
    if not members:
        return []
    jids = {m.jid for m in members} | {m.lid for m in members if m.lid}
    phone_jids = {f"{m.phone}@s.whatsapp.net" for m in members if m.phone}
    known: dict[str, Contact] = {}
    for c in Contact.objects.filter(
        Q(jid__in=jids | phone_jids) | Q(lid__in=jids), session_id=group.session_id
    ).only("jid", "lid", "saved_name", "push_name"):
        known[c.jid] = c
        if c.lid:
            known[c.lid] = c
    latest = (
        Message.objects.filter(conversation__contact=group, sender_jid__in=jids)
        .exclude(sender_name="")
        .values("sender_jid")
        .annotate(last=Max("pk"))
        .values_list("last", flat=True)
    )
    said = dict(Message.objects.filter(pk__in=latest).values_list("sender_jid", "sender_name"))
    out = []
    for m in members:
        contact = next(
            (
                known[j]
                for j in (m.jid, m.lid, f"{m.phone}@s.whatsapp.net" if m.phone else "")
                if j in known
            ),
            None,
        )
        name = (
            (contact.saved_name if contact else "")
            or m.name
            or said.get(m.jid)
            or said.get(m.lid)
            or (contact.push_name if contact else "")
        )
        out.append(Member(name=name, phone=m.phone, is_admin=m.is_admin))
    return out


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


def _templates_visible(user: AnyUser) -> QuerySet[QuickReply]:
    if not user.is_authenticated:
        return QuickReply.objects.none()
    return QuickReply.objects.filter(
        Q(owner=user, session__isnull=True) | Q(session__in=visible_session_ids(user))
    )


def template_list(*, user: AnyUser) -> list[QuickReply]:
    """The templates ``user`` may use: their own personal ones, and those shared on the
    numbers they own or work; by shortcut, personal first."""
    rows = _templates_visible(user).select_related("session").order_by("shortcut", "pk")
    return sorted(rows, key=lambda t: (t.shortcut, t.session_id is not None))


def template_list_for_conversation(
    *, user: AnyUser, conversation: Conversation
) -> list[QuickReply]:
    """The templates the composer offers in ``conversation`` (one ``user`` may see): their
    personal ones and those shared on its number."""
    if not user.is_authenticated:
        return []
    rows = QuickReply.objects.filter(
        Q(owner=user, session__isnull=True) | Q(session_id=conversation.session_id)
    ).order_by("shortcut", "pk")
    return sorted(rows, key=lambda t: (t.shortcut, t.session_id is not None))


def template_get(*, user: AnyUser, template_id: int) -> QuickReply:
    """A template ``user`` may use (and read the file of); ``QuickReply.DoesNotExist``
    for anyone else's."""
    return _templates_visible(user).select_related("session").get(pk=template_id)


def template_file_get(*, user: AnyUser, template_id: int) -> QuickReply:
    """A template whose file ``user`` may download: one they may use, or any for staff
    (who manage every template in Django admin)."""
    if user.is_authenticated and user.is_staff:
        return QuickReply.objects.get(pk=template_id)
    return template_get(user=user, template_id=template_id)


def template_can_edit(*, user: AnyUser, template: QuickReply) -> bool:
    """Personal templates are their owner's to change; shared ones the number's owner's
    (its agents only use them)."""
    if template.session_id is None:
        return template.owner_id == user.pk
    session = template.session
    return session is not None and session.owner_id == user.pk


def template_editable_get(*, user: AnyUser, template_id: int) -> QuickReply:
    """A template ``user`` may change or delete; ``QuickReply.DoesNotExist`` otherwise
    (a shared one an agent only uses answers as if it did not exist)."""
    template = template_get(user=user, template_id=template_id)
    if not template_can_edit(user=user, template=template):
        raise QuickReply.DoesNotExist
    return template


def template_for_conversation(
    *, user: AnyUser, conversation: Conversation, template_id: int
) -> QuickReply:
    """A template ``user`` may use in ``conversation``: theirs, or shared on its number."""
    return QuickReply.objects.filter(
        Q(owner_id=user.pk, session__isnull=True) | Q(session_id=conversation.session_id)
    ).get(pk=template_id)


# --- Teams: tags and mentions --------------------------------------------------------------

_TAGS_BY_NAME = Tag.objects.order_by(Lower("name"), "pk")


def with_tags(rows: list[Conversation]) -> list[Conversation]:
    """Load the tags of these conversations and of their contacts (one query for any
    number of rows): a list row shows them (``conversations.templatetags.tags``), and
    so do the open conversation's tag editors. Each row's ``tags`` (and its contact's)
    read as prefetch_related leaves them, without its per-row ``filter()`` (most of a
    prefetch's cost for a page of rows)."""
    if rows:
        own, of_contact = _tags_of({r.pk for r in rows}, {r.contact_id for r in rows})
        for row in rows:
            _prefetched_tags(row, own.get(row.pk, []))
            _prefetched_tags(row.contact, of_contact.get(row.contact_id, []))
    return rows


# What a page shows of a tag: its created_at is left deferred (read on first use).
_TAG_FIELDS = ("id", "owner_id", "name", "color")


@cache
def _tags_of_statement() -> str:
    """The two link tables' rows with their tags, in one ``UNION ALL``, each by name:
    written once (the ORM composed its union again for every page, about 0.5 ms).
    ``{conversations}`` and ``{contacts}``: the ids' placeholders."""
    tag = Tag._meta.db_table
    parts = []
    for side, through, key in (
        (0, Tag.conversations.through, "conversations"),
        (1, Tag.contacts.through, "contacts"),
    ):
        fields = {f.related_model: f.column for f in through._meta.concrete_fields if f.is_relation}
        owner = fields[Conversation if side == 0 else Contact]
        # names from the models, values as parameters
        parts.append(
            f"SELECT {side}, l.{owner}, LOWER(t.name), t.id, t.owner_id, t.name, t.color"  # noqa: S608
            f" FROM {through._meta.db_table} l JOIN {tag} t ON t.id = l.{fields[Tag]}"
            f" WHERE l.{owner} IN ({{{key}}})"
        )
    return " UNION ALL ".join(parts) + " ORDER BY 3, 4"


def _tags_of(
    conversation_ids: set[int], contact_ids: set[int]
) -> tuple[dict[int, list[Tag]], dict[int, list[Tag]]]:
    """The tags of these conversations and those of these contacts, each by name."""
    sql = _tags_of_statement().format(
        conversations=", ".join(["%s"] * len(conversation_ids)),
        contacts=", ".join(["%s"] * len(contact_ids)),
    )
    tags: tuple[dict[int, list[Tag]], dict[int, list[Tag]]] = ({}, {})
    with connection.cursor() as cursor:
        cursor.execute(sql, [*conversation_ids, *contact_ids])
        for side, key, _lname, *values in cursor.fetchall():
            tags[side].setdefault(key, []).append(Tag.from_db("default", _TAG_FIELDS, values))
    return tags


def _prefetched_tags(obj: Conversation | Contact, tags: list[Tag]) -> None:
    """``obj.tags.all()`` is ``tags`` from now on: a queryset of ``_TAGS_BY_NAME``'s
    (its query is cloned before any change, as every queryset's) holding them."""
    loaded: QuerySet[Tag] = QuerySet(model=Tag, query=_TAGS_BY_NAME.query)
    loaded._result_cache = tags
    loaded._prefetch_done = True  # type: ignore[attr-defined]
    cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
    cache["tags"] = loaded


def tag_list(
    *,
    user: AnyUser,
    session: WhatsAppSession | None = None,
    sessions: Iterable[WhatsAppSession] | None = None,
) -> list[Tag]:
    """The tags ``user`` may use: those of the owners of the numbers they see, or of
    ``session``'s owner (a number they see) only. ``sessions``: the numbers ``user``
    sees, when the caller has read them (the inbox page): their owners' tags."""
    if session is not None:
        owners: Any = [session.owner_id]
    elif sessions is not None:
        owners = sorted({s.owner_id for s in sessions})
    else:
        owners = WhatsAppSession.objects.filter(pk__in=visible_session_ids(user)).values("owner_id")
    return list(_TAGS_BY_NAME.filter(owner_id__in=owners))


def tag_get(*, user: AnyUser, tag_id: int) -> Tag:
    """One tag ``user`` may use; ``Tag.DoesNotExist`` for anyone else's."""
    owners = WhatsAppSession.objects.filter(pk__in=visible_session_ids(user)).values("owner_id")
    return Tag.objects.get(pk=tag_id, owner_id__in=owners)


def conversation_tags(*, conversation_ids: list[int]) -> list[dict[str, Any]]:
    """The tags of these conversations and of their contacts, as the live
    ``tags_changed`` carries them (no access rule: the caller wrote them)."""
    rows = with_tags(list(Conversation.objects.filter(pk__in=conversation_ids).order_by("pk")))
    return [
        {
            "conversation_id": c.pk,
            "session_id": c.session_id,
            "contact_id": c.contact_id,
            "tags": [tag_data(t) for t in c.tags.all()],
            "contact_tags": [tag_data(t) for t in c.contact.tags.all()],
        }
        for c in rows
    ]


def mentioned_conversation_ids(
    *, user: AnyUser, limit: int = 500, sessions: Iterable[WhatsAppSession] | None = None
) -> list[int]:
    """Conversations where ``user`` has unread @mentions (of numbers they still see;
    ``sessions``: those numbers, when the caller has read them)."""
    if not user.is_authenticated:
        return []
    return list(
        NoteMention.objects.filter(
            user=user,
            read_at__isnull=True,
            conversation__session_id__in=seen_ids(user, sessions),
        )
        .values_list("conversation_id", flat=True)
        .distinct()[:limit]
    )
