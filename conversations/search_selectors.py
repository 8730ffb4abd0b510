"""Full-text search over the messages (and private notes) and the contacts a user may see.

Messages match through the index of ``conversations/search_index.py``: every word of
the search must be there (accents folded, Portuguese stems on PostgreSQL), the last
one also as the start of a word. Best first: the database's rank, then the newest.
Contacts match by the start of a name (or of any word of it) and by phone digits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchHeadline, SearchRank
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from conversations import search_index
from conversations.models import Contact, Conversation, Message, Tag
from conversations.search_index import START, STOP
from conversations.selectors import conversation_queryset
from vbcrm.types import AnyUser
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import visible_session_ids

SNIPPET_CHARS = 160
# How many of the newest matching messages are ranked (the results' pages end there).
WINDOW = 2000
# From how many matches (estimated) the newest are found by walking the messages from
# the newest rather than by reading every match through the index (_newest_first).
WALK_ABOVE = 50_000
# The most contacts a name or phone search reads (the newest), to show the few most
# recently active of.
CONTACT_IDS = 500
# What a hit shows (the results page): its rows are read with these columns only.
HIT_FIELDS = (
    "direction",
    "kind",
    "body",
    "file_name",
    "location_name",
    "wa_timestamp",
    "created_at",
    "conversation__session_id",
    "conversation__contact__jid",
    "conversation__contact__phone",
    "conversation__contact__push_name",
    "conversation__contact__saved_name",
    "conversation__contact__group_subject",
)


@dataclass(frozen=True)
class SearchFilters:
    session_id: int | None = None
    date_from: date | None = None  # days in the current time zone, both included
    date_to: date | None = None
    direction: str = ""  # "" or a Message.Direction value (notes are NOTA)
    tag_id: int | None = None  # on the conversation or on its contact


@dataclass(frozen=True)
class SearchHit:
    message: Message
    snippet: SafeString  # the text around the match, escaped, matches in <mark>
    rank: float


def _ranked(qs: QuerySet[Message], terms: list[str]) -> QuerySet[Message]:
    """``qs`` with each message's ``rank``: higher for a better match (0 without an index)."""
    kind = search_index.backend()
    if kind == "postgresql":
        # ts_rank is a float4: as a float8, the page cursor's value reads back exactly
        rank = SearchRank(search_index.SearchVectorColumn(), search_index.match_query(terms))
        return qs.annotate(rank=Cast(rank, FloatField()))
    if kind == "fts5":
        return qs.annotate(rank=search_index.fts5_rank(terms))
    return qs.annotate(rank=Value(0.0, output_field=FloatField()))


def _with_snippet(qs: QuerySet[Message], terms: list[str]) -> QuerySet[Message]:
    kind = search_index.backend()
    if kind == "postgresql":
        return qs.annotate(
            snippet=SearchHeadline(
                "body",
                search_index.match_query(terms),
                config=search_index.CONFIG,
                start_sel=START,
                stop_sel=STOP,
                max_words=24,
                min_words=8,
                short_word="2",
                max_fragments=2,
                fragment_delimiter=" … ",
            )
        )
    if kind == "fts5":
        return qs.annotate(snippet=search_index.fts5_snippet(terms))
    return qs.annotate(snippet=F("body"))


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _filtered(qs: QuerySet[Message], f: SearchFilters) -> QuerySet[Message]:
    if f.session_id:
        qs = qs.filter(conversation__session_id=f.session_id)
    if f.direction:
        qs = qs.filter(direction=f.direction)
    if f.date_from or f.date_to:
        # The time a message shows (WhatsApp's, else when it arrived), by the reader's days.
        qs = qs.alias(_when=Coalesce("wa_timestamp", "created_at"))
        if f.date_from:
            qs = qs.filter(_when__gte=_day_start(f.date_from))
        if f.date_to:
            qs = qs.filter(_when__lt=_day_start(f.date_to + timedelta(days=1)))
    if f.tag_id:
        qs = qs.filter(
            Exists(
                Tag.conversations.through.objects.filter(
                    conversation=OuterRef("conversation"), tag=f.tag_id
                )
            )
            | Exists(
                Tag.contacts.through.objects.filter(
                    contact=OuterRef("conversation__contact"), tag=f.tag_id
                )
            )
        )
    return qs


def message_search(
    *,
    user: AnyUser,
    text: str,
    filters: SearchFilters | None = None,
    after: tuple[float, int] | None = None,
    limit: int = 50,
    sessions: Mapping[int, WhatsAppSession] | None = None,
) -> list[SearchHit]:
    """Messages and notes of the numbers ``user`` sees that hold every word of ``text``,
    best first (rank, then newest), among the newest ``WINDOW`` that match. ``after``:
    the ``(rank, id)`` of the last hit of the previous page. ``sessions``: the numbers
    ``user`` sees, by id, when the caller has them (each hit's number comes from there
    instead of a join)."""
    terms = search_index.words(text)
    if not terms:
        return []
    seen = Message.objects.filter(
        conversation__session_id__in=visible_session_ids(user)
    ).exclude(  # a number that ignores groups hides them, as the inbox does
        conversation__contact__is_group=True, conversation__session__ignore_groups=True
    )
    found = search_index.matching(_filtered(seen, filters or SearchFilters()), terms)
    # Ranked among the newest matches only: a common word matches a good part of all
    # messages, and ranking every one of them would read them all.
    window = found.order_by(_newest_first(found)).values("pk")[:WINDOW]
    ranked = _ranked(Message.objects.filter(pk__in=window), terms)
    if after is not None:
        rank, pk = after
        ranked = ranked.filter(Q(rank__lt=rank) | Q(rank=rank, pk__lt=pk))
    # (without an index every rank is 0: a constant PostgreSQL refuses to order by)
    best = ["-pk"] if search_index.backend() == "like" else [F("rank").desc(), "-pk"]
    page = ranked.order_by(*best).values("pk")[:limit]
    # The page's rows (a few) are read whole, with their snippets, in the same query.
    joined = ["conversation__contact"]
    fields = list(HIT_FIELDS)
    if sessions is None:
        joined.append("conversation__session")
        fields.append("conversation__session__name")
    qs = _ranked(Message.objects.filter(pk__in=page), terms).select_related(*joined).only(*fields)
    rows = list(_with_snippet(qs, terms).order_by(*best))
    if sessions is not None:
        _attach(sessions, [m.conversation for m in rows])
    return [
        SearchHit(message=m, snippet=_snippet(m, terms), rank=float(m.rank))  # type: ignore[attr-defined]
        for m in rows
    ]


def _newest_first(found: QuerySet[Message]) -> OrderBy:
    """How to find the newest matches. Walking the messages from the newest reads about
    ``WINDOW / share`` rows, where ``share`` is the part of all messages that match:
    few for a common word, and a great many for a rare one or several words together,
    which PostgreSQL's planner (unaware of what each row's match costs) still walks.
    Below ``WALK_ABOVE`` matches (its estimate, from the index's statistics), ordering by
    an expression no index has makes it read every match once through the index."""
    if search_index.backend() != "postgresql":
        return F("pk").desc()
    sql, params = found.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    if plan[0]["Plan"]["Plan Rows"] >= WALK_ABOVE:
        return F("pk").desc()
    return ExpressionWrapper(F("pk") + 0, output_field=BigIntegerField()).desc()


def _attach(sessions: Mapping[int, WhatsAppSession], conversations: list[Conversation]) -> None:
    for c in conversations:
        # A number missing here (shared with the user since) loads on first use.
        if c.session_id in sessions:
            c.session = sessions[c.session_id]


def conversation_search(
    *,
    user: AnyUser,
    text: str,
    filters: SearchFilters | None = None,
    limit: int = 10,
    sessions: Mapping[int, WhatsAppSession] | None = None,
) -> list[Conversation]:
    """Conversations whose contact has a name word starting with each word of ``text``
    (accents folded on PostgreSQL), or a phone starting with its digits (with or
    without ``VBCRM_DEFAULT_COUNTRY_CODE``); newest activity first."""
    text = " ".join(text.split())
    if not text:
        return []
    f = filters or SearchFilters()
    contacts = Contact.objects.filter(session_id__in=visible_session_ids(user))
    match = Q()
    terms = search_index.words(text)
    if terms and connection.vendor == "postgresql":
        match |= Q(search_index.names_match(terms))  # through the names' index
    elif terms:
        for field in ("saved_name", "push_name", "group_subject"):
            match |= Q(**{f"{field}__istartswith": text}) | Q(**{f"{field}__icontains": " " + text})
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3 and len(digits) * 2 >= len(text.replace(" ", "")):
        match |= Q(phone__startswith=digits)
        country = settings.VBCRM_DEFAULT_COUNTRY_CODE
        if country and not digits.startswith(country):  # typed without the country code
            match |= Q(phone__startswith=country + digits)
    if not match:
        return []
    # The contacts first, on their own (through the names' index): inside the
    # conversations' query the planner would rather test every contact's names.
    ids = list(contacts.filter(match).order_by("-pk").values_list("pk", flat=True)[:CONTACT_IDS])
    if not ids:
        return []
    qs = (
        conversation_queryset(user=user)
        .filter(contact__in=ids)
        .exclude(contact__is_group=True, session__ignore_groups=True)
    )
    if f.session_id:
        qs = qs.filter(session_id=f.session_id)
    if f.tag_id:
        qs = qs.filter(
            Exists(
                Tag.conversations.through.objects.filter(conversation=OuterRef("pk"), tag=f.tag_id)
            )
            | Exists(Tag.contacts.through.objects.filter(contact=OuterRef("contact"), tag=f.tag_id))
        )
    if sessions is not None:
        qs = qs.select_related(None).select_related("contact")
    rows = list(qs.order_by("-last_message_at", "-pk")[:limit])
    if sessions is not None:
        _attach(sessions, rows)
    return rows


# --- snippets ---------------------------------------------------------------------------------


def _snippet(message: Message, terms: list[str]) -> SafeString:
    raw = getattr(message, "snippet", None) or ""
    if START not in raw:
        # LIKE matches, and text the database did not mark (a match in the file name)
        raw = _mark_words(message.body or message.file_name or message.location_name, terms)
    return marked_html(raw)


def _mark_words(text: str, terms: list[str]) -> str:
    """``text`` cut around its first match of ``terms`` (case-insensitive), matches
    between the markers."""
    text = " ".join(text.split())
    if not terms:
        return text[:SNIPPET_CHARS]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
    first = pattern.search(text)
    start = max(0, first.start() - SNIPPET_CHARS // 3) if first else 0
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < (first.start() if first else start) else start
    cut = text[start : start + SNIPPET_CHARS]
    marked = pattern.sub(lambda m: START + m.group(0) + STOP, cut)
    return ("… " if start else "") + marked + (" …" if start + SNIPPET_CHARS < len(text) else "")


def marked_html(raw: str) -> SafeString:
    """Text with START/STOP markers as escaped HTML with <mark>: markers out of place
    (text that held the characters itself) are dropped, so the tags always balance."""
    out: list[str] = []
    open_ = False
    for part in re.split(f"([{START}{STOP}])", raw):
        if part == START:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif part == STOP:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(escape(part))
    if open_:
        out.append("</mark>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text is escaped above


def search_available() -> bool:
    """Whether the database has the index (PostgreSQL, or SQLite with FTS5)."""
    return search_index.backend(connection) != "like"
