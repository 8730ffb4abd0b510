"""Full-text search over the messages (and private notes) and the contacts a user may see.

Messages match through the index of ``conversations/search_index.py``: every word of
the search must be there (accents folded, Portuguese stems on PostgreSQL), the last
one also as the start of a word. Best first: the database's rank, then the newest.
Contacts match by the start of a name (or of any word of it) and by phone digits.
"""

from __future__ import annotations

import heapq
import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchRank
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.safestring import SafeString

from conversations import search_index
from conversations.models import Contact, Conversation, Message, Tag, display_name
from conversations.search_index import START, STOP
from conversations.selectors import conversation_queryset
from vbcrm.db.plans import planned_each_time
from vbcrm.types import AnyUser
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import visible_session_ids

SNIPPET_CHARS = 160
# How many of the newest matching messages are ranked (the results' pages end there).
WINDOW = 2000
# PostgreSQL (_pg_window): how many buckets of ids the first stretch searched holds, and
# the most a stretch holds; the most rows a read of a stretch takes; below which share of
# the matches read being the user's the rest is read with the access rule joined in.
FIRST_BUCKETS = 2
MAX_BUCKETS = 256
MAX_READ = 10_000
MIN_SHARE = 0.1
# The most contacts a name or phone search reads (the newest), to show the few most
# recently active of.
CONTACT_IDS = 500
# What a hit shows (the results page): its rows are read as these columns, not as
# models (51 messages, their conversations and contacts built as models cost more
# than the query).
HIT_COLUMNS = (
    "pk",
    "conversation_id",
    "conversation__session_id",
    "direction",
    "kind",
    "body",
    "file_name",
    "location_name",
    "wa_timestamp",
    "created_at",
    "conversation__contact__saved_name",
    "conversation__contact__group_subject",
    "conversation__contact__push_name",
    "conversation__contact__phone",
    "conversation__contact__jid",
)
# The same columns on PostgreSQL, with the snippets, as one statement written once
# (composed by the ORM, it cost about 1 ms a search): ``{snippet}`` and ``{rows}``
# are ``search_index.headline`` and ``search_index.id_in`` on the messages ("m").
_PG_HITS = (
    "SELECT m.id, m.conversation_id, c.session_id, m.direction, m.kind, m.body,"  # noqa: S608
    " m.file_name, m.location_name, m.wa_timestamp, m.created_at, k.saved_name,"
    " k.group_subject, k.push_name, k.phone, k.jid, {snippet}"
    f" FROM {Message._meta.db_table} m"
    f" JOIN {Conversation._meta.db_table} c ON c.id = m.conversation_id"
    f" JOIN {Contact._meta.db_table} k ON k.id = c.contact_id"
    " WHERE {rows}"
)
_PG_CONTACT_IDS = (
    f"SELECT k.id FROM {Contact._meta.db_table} k WHERE k.session_id = ANY(%s)"  # noqa: S608
    " AND ({match}) ORDER BY k.id DESC LIMIT %s"
)
_PG_NEWEST = f"SELECT id FROM {Message._meta.db_table} ORDER BY id DESC LIMIT 1"  # noqa: S608
# A stretch of ``_pg_window``: the newest matches first, every match through the index
# then the newest (``id + 0``, not a walk by id: PostgreSQL cannot tell how many rows a
# walk would read before it found enough). ``{where}``: ``_pg_found``'s conditions and
# the stretch's.
_PG_STRETCH = (
    f"SELECT m.id, m.conversation_id, m.search_vector FROM {Message._meta.db_table} m"  # noqa: S608
    " WHERE {where} ORDER BY m.id + 0 DESC LIMIT %s"
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
    """A message that matched, with what the results show of it."""

    pk: int  # the message's
    conversation_id: int
    session_id: int
    direction: str
    kind: str
    body: str
    file_name: str
    when: datetime  # when it was said (WhatsApp's time, else when it arrived)
    name: str  # its contact's display name
    phone: str
    number: str  # the name of its conversation's number
    snippet: SafeString  # the text around the match, escaped, matches in <mark>
    rank: float

    @property
    def is_note(self) -> bool:
        return self.direction == Message.Direction.NOTE

    @property
    def is_inbound(self) -> bool:
        return self.direction == Message.Direction.INBOUND


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
        return qs.annotate(snippet=search_index.headline(terms))
    if kind == "fts5":
        return qs.annotate(snippet=search_index.fts5_snippet(terms))
    return qs.annotate(snippet=F("body"))


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _message_filtered(qs: QuerySet[Message], f: SearchFilters) -> QuerySet[Message]:
    """``qs`` (of messages) narrowed by the filters on the message itself."""
    if f.direction:
        qs = qs.filter(direction=f.direction)
    if f.date_from or f.date_to:
        # The time a message shows (WhatsApp's, else when it arrived), by the reader's days.
        qs = qs.alias(_when=Coalesce("wa_timestamp", "created_at"))
        if f.date_from:
            qs = qs.filter(_when__gte=_day_start(f.date_from))
        if f.date_to:
            qs = qs.filter(_when__lt=_day_start(f.date_to + timedelta(days=1)))
    return qs


def _conversation_filtered(qs: QuerySet, f: SearchFilters, through: str = "") -> QuerySet:
    """``qs`` narrowed by the filters on the conversation: of conversations, or of
    messages with ``through="conversation__"``."""
    if f.session_id:
        qs = qs.filter(**{f"{through}session_id": f.session_id})
    if f.tag_id:
        conversation = OuterRef(through.removesuffix("__") or "pk")
        qs = qs.filter(
            Exists(
                Tag.conversations.through.objects.filter(conversation=conversation, tag=f.tag_id)
            )
            | Exists(
                Tag.contacts.through.objects.filter(
                    contact=OuterRef(f"{through}contact"), tag=f.tag_id
                )
            )
        )
    return qs


def _filtered(qs: QuerySet[Message], f: SearchFilters) -> QuerySet[Message]:
    return _conversation_filtered(_message_filtered(qs, f), f, through="conversation__")


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
    ``user`` sees, by id, when the caller has them (read here otherwise: each hit's
    number, and on PostgreSQL the access rule, come from there)."""
    terms = search_index.words(text)
    if not terms:
        return []
    f = filters or SearchFilters()
    if sessions is None:
        sessions = _numbers_seen(user)
    rows: list[tuple]
    if search_index.backend() == "postgresql":
        # how many messages hold the words decides the plan: planned for them each time
        with planned_each_time():
            window = _pg_window(user, terms, f, sessions)
        if after is not None:
            window = [r for r in window if r < after]  # (rank, id): a lower rank, or an older tie
        ranks = {pk: rank for rank, pk in heapq.nlargest(limit, window)}  # best first
        # The page's rows (a few) are read with their snippets; their ranks are known.
        rows = sorted(
            ((*row, ranks[row[0]]) for row in _pg_hits(list(ranks), terms)),
            key=lambda row: (row[-1], row[0]),
            reverse=True,
        )
    else:
        found = search_index.matching(_filtered(_seen(user), f), terms)
        # Ranked among the newest matches only: a common word matches a good part of
        # all messages, and ranking every one of them would read them all.
        newest = found.order_by("-pk").values("pk")[:WINDOW]
        ranked = _ranked(Message.objects.filter(pk__in=newest), terms)
        if after is not None:
            rank, pk = after
            ranked = ranked.filter(Q(rank__lt=rank) | Q(rank=rank, pk__lt=pk))
        # (without an index every rank is 0: a constant a database may refuse to order by)
        best = ["-pk"] if search_index.backend() == "like" else [F("rank").desc(), "-pk"]
        page = ranked.order_by(*best).values("pk")[:limit]
        # The page's rows (a few) are read with their snippets, in the same query.
        hits = _with_snippet(_ranked(Message.objects.filter(pk__in=page), terms), terms)
        rows = list(hits.values_list(*HIT_COLUMNS, "snippet", "rank").order_by(*best))
    names = _number_names(sessions, {row[2] for row in rows})
    return [_hit(row, terms, names) for row in rows]


def _numbers_seen(user: AnyUser) -> dict[int, WhatsAppSession]:
    """The numbers ``user`` sees, by id, with what a search reads of them."""
    return {
        s.pk: s
        for s in WhatsAppSession.objects.filter(pk__in=visible_session_ids(user)).only(
            "ignore_groups", "name"
        )
    }


def _pg_hits(ids: list[int], terms: list[str]) -> list[tuple]:
    """``HIT_COLUMNS`` and the snippet of the messages ``ids`` (PostgreSQL)."""
    if not ids:
        return []
    snippet, rows = search_index.headline(terms), search_index.id_in(ids)
    sql = _PG_HITS.format(
        snippet=snippet.template.replace("{table}", "m"),
        rows=rows.template.replace("{table}", "m"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*snippet.params, *rows.params])
        return cursor.fetchall()


def _number_names(sessions: Mapping[int, WhatsAppSession], ids: set[int]) -> dict[int, str]:
    """The names of the numbers ``ids``, from ``sessions`` (a number missing there,
    shared with the user since the caller read them, is read)."""
    names = {pk: sessions[pk].name for pk in ids if pk in sessions}
    missing = ids - names.keys()
    if missing:
        names.update(WhatsAppSession.objects.filter(pk__in=missing).values_list("pk", "name"))
    return names


def _hit(row: tuple, terms: list[str], names: Mapping[int, str]) -> SearchHit:
    (pk, conversation, number, direction, kind, body, file_name, location_name) = row[:8]
    (wa_timestamp, created_at, saved, subject, push, phone, jid, snippet, rank) = row[8:]
    return SearchHit(
        pk=pk,
        conversation_id=conversation,
        session_id=number,
        direction=direction,
        kind=kind,
        body=body,
        file_name=file_name,
        when=wa_timestamp or created_at,
        name=display_name(saved, subject, push, phone, jid),
        phone=phone,
        number=names.get(number, ""),
        snippet=_snippet(snippet, body or file_name or location_name, terms),
        rank=float(rank),
    )


def _seen(user: AnyUser) -> QuerySet[Message]:
    """The messages of the numbers ``user`` sees."""
    return Message.objects.filter(conversation__session_id__in=visible_session_ids(user)).exclude(
        # a number that ignores groups hides them, as the inbox does
        conversation__contact__is_group=True,
        conversation__session__ignore_groups=True,
    )


def _pg_window(
    user: AnyUser,
    terms: list[str],
    f: SearchFilters,
    sessions: Mapping[int, WhatsAppSession],
) -> list[tuple[float, int]]:
    """``(rank, id)`` of the newest ``WINDOW`` messages that match and that ``user`` may
    see, on PostgreSQL (``sessions``: the numbers ``user`` sees).

    They are looked for from the newest bucket of ids back (``search_index.in_buckets``),
    a stretch at a time: a first one of ``FIRST_BUCKETS``, then one as long as the
    matches found so far say the rest needs, then all older messages. Each stretch is
    read without the access rule, newest first, with each message's number looked up
    row by row; the rule is then applied here, by the numbers. Joined in, PostgreSQL's
    planner would rather read every conversation than look up those few. Groups that
    their number ignores, and a filter by tag, are told by a query of the conversations
    read (``_conversations_seen``). When most of what is read is not the user's (a
    filter by number, a user of few numbers), the rest is read the other way round,
    the rule joined in (``_window_by_rule``).
    """
    with connection.cursor() as cursor:
        cursor.execute(_PG_NEWEST)
        row = cursor.fetchone()
    newest = row[0] if row else None
    if newest is None:
        return []
    numbers = {pk for pk in sessions if not f.session_id or pk == f.session_id}
    # which numbers' conversations need a look at the conversation itself
    checked = {pk for pk in numbers if f.tag_id or sessions[pk].ignore_groups}
    found, found_params = _pg_found(terms, f)
    kept: list[tuple[float, int]] = []
    top = last = newest // search_index.BUCKET
    width = FIRST_BUCKETS
    below: int | None = None  # within a stretch, the oldest id read so far
    in_stretch = 0  # of the user's matches found in this stretch
    limit = WINDOW
    while True:
        first = last - width + 1
        where, params = list(found), list(found_params)
        if first > 0:
            buckets = search_index.in_buckets(first, last)
            where.append(buckets.template.replace("{table}", "m"))
            params += buckets.params
        elif last < top:  # everything older than the stretches read
            where.append("m.id < %s")
            params.append((last + 1) * search_index.BUCKET)
        if below is not None:
            where.append("m.id < %s")
            params.append(below)
        rows = _rows_ranked(_PG_STRETCH.format(where=" AND ".join(where)), [*params, limit], terms)
        check = {c for _, c, number, _ in rows if number in checked}
        passed = _conversations_seen(user, check, f)
        visible = [
            (rank, pk)
            for pk, c, number, rank in rows
            if number in numbers and (number not in checked or c in passed)
        ]
        kept += visible[: WINDOW - len(kept)]
        in_stretch += len(visible)
        need = WINDOW - len(kept)
        if need <= 0:
            return kept
        if len(rows) == limit:  # this stretch holds more: read on, below what was read
            below = rows[-1][0]
            share = len(visible) / len(rows)
            if share < MIN_SHARE:
                return kept + _window_by_rule(user, terms, f, below, need)
            limit = min(MAX_READ, math.ceil(need / share * 1.2))
            continue
        if first <= 0:
            return kept  # every message has been read
        # The next stretch, older: as long as this one's matches say the rest needs
        # (with a margin), at least twice this one; everything left if it had none.
        # Past MAX_BUCKETS, everything left: each bucket is an entry of the index to look
        # up, and so many cost more than reading every match.
        span, width = last - first + 1, first
        if in_stretch:
            ids = min(newest + 1, (last + 1) * search_index.BUCKET) - first * search_index.BUCKET
            wanted = math.ceil(need / in_stretch * ids * 1.25 / search_index.BUCKET)
            if max(2 * span, wanted) <= MAX_BUCKETS:
                width = min(width, max(2 * span, wanted))
        last, below, in_stretch = first - 1, None, 0


def _pg_found(terms: list[str], f: SearchFilters) -> tuple[list[str], list]:
    """The conditions (on the messages, "m") and their parameters of a message that
    holds ``terms`` and that the filters on the message itself keep: what
    ``_message_filtered`` and ``search_index.matching`` ask, written for ``_PG_STRETCH``."""
    match = search_index.vector_match(terms)
    where = [match.template.replace("{table}", "m")]
    params: list = list(match.params)
    if f.direction:
        where.append("m.direction = %s")
        params.append(f.direction)
    # the time a message shows (WhatsApp's, else when it arrived), by the reader's days
    if f.date_from:
        where.append("COALESCE(m.wa_timestamp, m.created_at) >= %s")
        params.append(_day_start(f.date_from))
    if f.date_to:
        where.append("COALESCE(m.wa_timestamp, m.created_at) < %s")
        params.append(_day_start(f.date_to + timedelta(days=1)))
    return where, params


def _rows_ranked(inner: str, params: list, terms: list[str]) -> list[tuple[int, int, int, float]]:
    """``(id, conversation id, number id, rank)`` of the messages ``inner`` reads: a
    statement of their ``(id, conversation id, search vector)``, newest first."""
    query = search_index.pg_tsquery(terms)
    conversations = Conversation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # ranked once the newest are picked (each rank reads a whole vector); the
            # number looked up for each of them (a subquery in the select list is run
            # row by row, where a join may read every conversation)
            f"SELECT s.id, s.conversation, (SELECT c.session_id FROM {conversations} c"  # noqa: S608
            f" WHERE c.id = s.conversation), ts_rank(s.vector, to_tsquery(%s::regconfig, %s))"
            f"::float8 FROM ({inner}) AS s(id, conversation, vector) ORDER BY s.id DESC",
            (search_index.CONFIG, query, *params),
        )
        return cursor.fetchall()


def _conversations_seen(user: AnyUser, ids: set[int], f: SearchFilters) -> set[int]:
    """Those of the conversations ``ids`` that ``user`` sees and the filters keep. The
    groups of numbers that ignore them are told apart in a second query, when there are
    such numbers: joined in, the contacts are read whole rather than looked up."""
    if not ids:
        return set()
    rows = _conversation_filtered(
        Conversation.objects.filter(
            search_index.id_in(ids), session_id__in=visible_session_ids(user)
        ),
        f,
    ).values_list("pk", "contact_id", "session__ignore_groups")
    seen = {pk: contact for pk, contact, ignore_groups in rows if ignore_groups}
    if seen:
        groups = set(
            Contact.objects.filter(
                search_index.id_in(set(seen.values())), is_group=True
            ).values_list("pk", flat=True)
        )
        hidden = {pk for pk, contact in seen.items() if contact in groups}
    else:
        hidden = set()
    return {pk for pk, _, _ in rows} - hidden


def _window_by_rule(
    user: AnyUser, terms: list[str], f: SearchFilters, below: int, need: int
) -> list[tuple[float, int]]:
    """``(rank, id)`` of the newest ``need`` matches older than ``below`` that ``user``
    sees: the access rule and the filters joined in."""
    qs = search_index.matching(_filtered(_seen(user), f), terms).filter(pk__lt=below)
    inner = (
        qs.annotate(_vector=search_index.SearchVectorColumn())
        .order_by(ExpressionWrapper(F("pk") + 0, output_field=BigIntegerField()).desc())
        .values_list("pk", "conversation_id", "_vector")[:need]
    )
    sql, params = inner.query.sql_with_params()
    return [(rank, pk) for pk, _, _, rank in _rows_ranked(sql, list(params), terms)]


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
    if sessions is None:
        sessions = _numbers_seen(user)
    terms = search_index.words(text)
    phones = []
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3 and len(digits) * 2 >= len(text.replace(" ", "")):
        phones.append(digits)
        country = settings.VBCRM_DEFAULT_COUNTRY_CODE
        if country and not digits.startswith(country):  # typed without the country code
            phones.append(country + digits)
    if not terms and not phones:
        return []
    # The contacts first, on their own (through the names' index): inside the
    # conversations' query the planner would rather test every contact's names. The
    # numbers the caller read, as ids (a subquery of the access rule costs the ORM and
    # the planner about 1 ms more here).
    if connection.vendor == "postgresql":
        ids = _pg_contact_ids(list(sessions), terms, phones)
    else:
        match = Q()
        for field in ("saved_name", "push_name", "group_subject") if terms else ():
            match |= Q(**{f"{field}__istartswith": text}) | Q(**{f"{field}__icontains": " " + text})
        for phone in phones:
            match |= Q(phone__startswith=phone)
        contacts = Contact.objects.filter(match, session_id__in=list(sessions)).order_by("-pk")
        ids = list(contacts.values_list("pk", flat=True)[:CONTACT_IDS])
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
    rows = list(
        qs.select_related(None)
        .select_related("contact")
        .order_by("-last_message_at", "-pk")[:limit]
    )
    _attach(sessions, rows)
    return rows


def _pg_contact_ids(numbers: list[int], terms: list[str], phones: list[str]) -> list[int]:
    """The newest ``CONTACT_IDS`` contacts of ``numbers`` with a name word starting with
    each of ``terms`` (through the names' index) or a phone starting with one of
    ``phones`` (digits), on PostgreSQL: one statement written once, as ``_PG_HITS``."""
    match, params = [], []
    if terms:
        names = search_index.names_match(terms)
        match.append(names.template.replace("{table}", "k"))
        params += names.params
    for phone in phones:
        match.append("k.phone::text LIKE %s")
        params.append(phone + "%")  # digits: nothing to escape
    with connection.cursor() as cursor:
        cursor.execute(
            _PG_CONTACT_IDS.format(match=" OR ".join(match)), [numbers, *params, CONTACT_IDS]
        )
        return [pk for (pk,) in cursor.fetchall()]


# --- snippets ---------------------------------------------------------------------------------


def _snippet(raw: str | None, text: str, terms: list[str]) -> SafeString:
    """The database's snippet ``raw``; else (LIKE matches, and text the database did not
    mark: a match in the file name) ``text`` marked here."""
    if not raw or START not in raw:
        raw = _mark_words(text, terms)
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
            out.append(html.escape(part))  # django.utils.html.escape, without its wrappers
    if open_:
        out.append("</mark>")
    # every piece of text is escaped above (SafeString: mark_safe, without its wrapper)
    return SafeString("".join(out))


def search_available() -> bool:
    """Whether the database has the index (PostgreSQL, or SQLite with FTS5)."""
    return search_index.backend(connection) != "like"
