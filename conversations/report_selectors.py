"""The reports: who may see which figures, the period and filters asked for, and every
figure, each computed by the database (grouped counts and percentiles) in the reader's
time zone. Nothing here loads messages or conversations row by row.

Who sees what: staff see every number; an owner sees the numbers they own, all their
agents' figures; someone who owns no number sees the numbers they are an agent of, but
only their own figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Min, Q, QuerySet, When
from django.db.models.functions import Coalesce, TruncDate, TruncHour
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Conversation, ConversationEvent, Message, Queue
from conversations.report_sql import Percentile, Seconds
from vbcrm.db.plans import planned_each_time
from vbcrm.types import User
from whatsapp.models import SessionAgent, WhatsAppSession

PRESETS = ("today", "7", "30", "90", "custom")
DEFAULT_PRESET = "30"
MAX_DAYS = 366


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers: the days (in ``zone``), the numbers, and optionally one queue
    and one agent. Built by :func:`report_filters` only, after the access rule."""

    preset: str
    first_day: date
    last_day: date
    zone: tzinfo
    session_ids: tuple[int, ...]
    session_id: int | None = None
    queue_id: int | None = None
    agent_id: int | None = None
    own_only: bool = False  # an agent's own figures, whatever they asked for

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """The instant after the last day (exclusive)."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=self.zone)

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


@dataclass
class ReportChoices:
    """What the reader may pick in the filters."""

    numbers: list[WhatsAppSession] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    agents: list[User] = field(default_factory=list)
    own_only: bool = False


def report_sessions(*, user: User) -> tuple[QuerySet[WhatsAppSession], bool]:
    """The numbers ``user``'s reports cover, and whether they see only their own figures."""
    if user.is_staff:
        return WhatsAppSession.objects.all(), False
    owned = WhatsAppSession.objects.filter(owner=user)
    if owned.exists():
        return owned, False
    agent_of = SessionAgent.objects.filter(user=user).values("session_id")
    return WhatsAppSession.objects.filter(pk__in=agent_of), True


def report_choices(*, user: User, session_id: int | None = None) -> ReportChoices:
    """The numbers, queues and agents ``user`` may filter by (queues and agents of the
    chosen number, or of all of them)."""
    sessions, own_only = report_sessions(user=user)
    numbers = list(sessions.order_by("name", "pk"))
    ids = [s.pk for s in numbers if session_id in (None, s.pk)]
    queues = list(
        Queue.objects.filter(session_id__in=ids)
        .select_related("session")
        .order_by("session__name", "position", "pk")
    )
    agents: list[User] = []
    if not own_only:
        members = Q(pk__in=SessionAgent.objects.filter(session_id__in=ids).values("user_id"))
        members |= Q(pk__in=WhatsAppSession.objects.filter(pk__in=ids).values("owner_id"))
        agents = list(get_user_model().objects.filter(members).order_by("first_name", "username"))
    return ReportChoices(numbers=numbers, queues=queues, agents=agents, own_only=own_only)


def _id(params: Mapping[str, Any], name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: [_("Choose one of the options.")]})
    return int(raw)


def _day(params: Mapping[str, Any], name: str) -> date:
    raw = (params.get(name) or "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        message = _("Enter a date as YYYY-MM-DD.") if raw else _("Enter a date.")
        raise ValidationError({name: [message]}) from None


def report_filters(
    *, user: User, params: Mapping[str, Any], choices: ReportChoices | None = None
) -> ReportFilters:
    """Read the period and filters from a query string, checked against what ``user``
    may see. ``ValidationError`` (by field) for anything else: a number, queue or agent
    they may not see reads as one that does not exist."""
    choices = choices or report_choices(user=user, session_id=_id(params, "number"))
    zone = timezone.get_current_timezone()
    today = timezone.localdate(timezone.now(), zone)
    preset = (params.get("range") or DEFAULT_PRESET).strip()
    if preset not in PRESETS:
        raise ValidationError({"range": [_("Choose one of the options.")]})
    if preset == "custom":
        first, last = _day(params, "from"), _day(params, "to")
        if last < first:
            raise ValidationError({"to": [_("The end comes before the start.")]})
        if (last - first).days + 1 > MAX_DAYS:
            raise ValidationError(
                {"to": [_("Reports cover at most %(n)d days.") % {"n": MAX_DAYS}]}
            )
    elif preset == "today":
        first = last = today
    else:
        first, last = today - timedelta(days=int(preset) - 1), today

    session_id = _id(params, "number")
    visible = [s.pk for s in choices.numbers]
    if session_id is not None and session_id not in visible:
        raise ValidationError({"number": [_("Choose one of the options.")]})
    queue_id = _id(params, "queue")
    if queue_id is not None and queue_id not in {q.pk for q in choices.queues}:
        raise ValidationError({"queue": [_("Choose one of the options.")]})
    agent_id = _id(params, "agent")
    if choices.own_only:
        agent_id = user.pk
    elif agent_id is not None and agent_id not in {a.pk for a in choices.agents}:
        raise ValidationError({"agent": [_("Choose one of the options.")]})
    return ReportFilters(
        preset=preset,
        first_day=first,
        last_day=last,
        zone=zone,
        session_ids=tuple([session_id] if session_id is not None else visible),
        session_id=session_id,
        queue_id=queue_id,
        agent_id=agent_id,
        own_only=choices.own_only,
    )


# --- the figures ---------------------------------------------------------------------------


def _conversation_scope(f: ReportFilters, prefix: str = "") -> Q:
    """The conversations a report covers (``prefix``: the path to them from the row)."""
    q = Q(**{f"{prefix}session_id__in": f.session_ids})
    if f.queue_id is not None:
        q &= Q(**{f"{prefix}queue_id": f.queue_id})
    return q


def messages_per_day(f: ReportFilters) -> tuple[list[dict], list[list[int]]]:
    """Messages in and out per day (out: agents', automatic, from the phone; private
    notes are not messages), and the customers' messages by weekday (Monday first) and
    hour: one grouped query."""
    when = Coalesce("wa_timestamp", "created_at")
    scope = _conversation_scope(f, "conversation__")
    if f.agent_id is not None:
        # An agent's figures: what they sent, and what their conversations received.
        scope &= Q(sent_by_id=f.agent_id) | Q(
            conversation__assigned_to_id=f.agent_id, direction=Message.Direction.INBOUND
        )
    out = Q(direction=Message.Direction.OUTBOUND)
    # One local hour per group (one time zone conversion per row); days and weekdays
    # are read from the few hundred groups. Counted by a column the time index holds:
    # the index alone answers.
    rows = (
        Message.objects.annotate(at=when)
        .filter(scope, at__gte=f.start, at__lt=f.end)
        .exclude(direction=Message.Direction.NOTE)
        .annotate(hour=TruncHour("at", tzinfo=f.zone))
        .values("hour")
        .annotate(
            n_inbound=Count("direction", filter=Q(direction=Message.Direction.INBOUND)),
            n_agents=Count("direction", filter=out & Q(automatic=False, sent_by__isnull=False)),
            n_automatic=Count("direction", filter=out & Q(automatic=True)),
            n_phone=Count("direction", filter=out & Q(automatic=False, sent_by__isnull=True)),
        )
        .order_by()
    )
    by_day = {d: {"day": d, "inbound": 0, "agents": 0, "automatic": 0, "phone": 0} for d in f.days}
    hours = [[0] * 24 for _ in range(7)]
    for row in cast(list[dict[str, Any]], list(rows)):
        local = timezone.localtime(row["hour"], f.zone)
        counts = by_day.get(local.date())
        if counts is None:
            continue
        for key in ("inbound", "agents", "automatic", "phone"):
            counts[key] += row[f"n_{key}"]
        hours[local.weekday()][local.hour] += row["n_inbound"]
    return list(by_day.values()), hours


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):  # SQLite answers text
        return date.fromisoformat(value[:10])
    return value


def conversations_per_day(f: ReportFilters) -> list[dict]:
    """New, reopened and closed conversations per day: two grouped queries."""
    by_day = {d: {"day": d, "new": 0, "reopened": 0, "closed": 0} for d in f.days}
    new = Conversation.objects.filter(
        _conversation_scope(f), created_at__gte=f.start, created_at__lt=f.end
    )
    if f.agent_id is not None:
        new = new.filter(assigned_to_id=f.agent_id)
    for row in (
        new.annotate(day=TruncDate("created_at", tzinfo=f.zone))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        if (day := _as_date(row["day"])) in by_day:
            by_day[day]["new"] += row["n"]
    kinds = [ConversationEvent.Kind.REOPENED, ConversationEvent.Kind.CLOSED]
    events = _events(f, kinds)
    for row in (
        events.annotate(day=TruncDate("created_at", tzinfo=f.zone))
        .values("day", "kind")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        if (day := _as_date(row["day"])) in by_day:
            by_day[day][row["kind"]] += row["n"]
    return list(by_day.values())


def _events(f: ReportFilters, kinds: Sequence[str]) -> QuerySet[ConversationEvent]:
    qs = ConversationEvent.objects.filter(
        _conversation_scope(f, "conversation__"),
        kind__in=kinds,
        created_at__gte=f.start,
        created_at__lt=f.end,
    )
    if f.agent_id is not None:
        # Whose figure: the first reply's author; for a close, who held it, and for a
        # reopening, whose conversation it is now.
        qs = qs.filter(
            Q(kind=ConversationEvent.Kind.REPLIED, actor_id=f.agent_id)
            | Q(kind=ConversationEvent.Kind.CLOSED, to_user_id=f.agent_id)
            | Q(kind=ConversationEvent.Kind.REOPENED, conversation__assigned_to_id=f.agent_id)
        )
    return qs


_TIMED = [ConversationEvent.Kind.REPLIED, ConversationEvent.Kind.CLOSED]


def _timings(qs: QuerySet, group: list[str]) -> list[dict]:
    """Count, median and 90th percentile (seconds) of first replies and of resolutions,
    grouped by ``group``."""
    secs = Seconds("created_at", "since")
    replied = Q(kind=ConversationEvent.Kind.REPLIED)
    closed = Q(kind=ConversationEvent.Kind.CLOSED)
    values = qs.values(*group) if group else qs
    aggregates = {
        "first_count": Count("pk", filter=replied),
        "first_median": Percentile(secs, 0.5, filter=replied),
        "first_p90": Percentile(secs, 0.9, filter=replied),
        "resolution_count": Count("pk", filter=closed),
        "resolution_median": Percentile(secs, 0.5, filter=closed),
        "resolution_p90": Percentile(secs, 0.9, filter=closed),
    }
    if not group:
        return [values.aggregate(**aggregates)]
    return list(values.annotate(**aggregates).order_by())


_TIMING_KEYS = (
    "first_count",
    "first_median",
    "first_p90",
    "resolution_count",
    "resolution_median",
    "resolution_p90",
)

# The three groupings of the timings in one pass over the period's events (PostgreSQL):
# overall, per agent and per number (GROUPING() tells which set a row belongs to).
_GROUPED_TIMINGS = """
SELECT GROUPING(t.who), GROUPING(t.number), t.who, t.number,
       COUNT(*) FILTER (WHERE t.kind = %s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.secs) FILTER (WHERE t.kind = %s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY t.secs) FILTER (WHERE t.kind = %s),
       COUNT(*) FILTER (WHERE t.kind = %s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.secs) FILTER (WHERE t.kind = %s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY t.secs) FILTER (WHERE t.kind = %s)
  FROM ({events}) t
 GROUP BY GROUPING SETS ((), (t.who), (t.number))
"""


def _grouped_timings(events: QuerySet) -> tuple[dict, list[dict], list[dict]]:
    """:func:`_timings` overall, per ``who`` and per ``number`` at once."""
    inner = events.annotate(secs=Seconds("created_at", "since")).values(
        "kind", "who", "number", "secs"
    )
    replied, closed = ConversationEvent.Kind.REPLIED, ConversationEvent.Kind.CLOSED
    total: dict[str, Any] = dict.fromkeys(_TIMING_KEYS)
    total.update(first_count=0, resolution_count=0)
    per_agent: list[dict] = []
    per_number: list[dict] = []
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # no number to report on: what the ORM answers with no query
        return total, per_agent, per_number
    with connection.cursor() as cursor:
        cursor.execute(
            _GROUPED_TIMINGS.format(events=sql),
            [replied, replied, replied, closed, closed, closed, *params],
        )
        for by_who, by_number, who, number, *figures in cursor.fetchall():
            row = dict(zip(_TIMING_KEYS, figures, strict=True))
            if by_who and by_number:
                total = row
            elif by_number:
                per_agent.append({"who": who, **row})
            else:
                per_number.append({"number": number, **row})
    return total, per_agent, per_number


def response_times(f: ReportFilters) -> dict[str, Any]:
    """First response time (the customer's first message of an opening to the first
    human reply) and resolution time (opening to closing): median and p90 overall, per
    agent (who replied first; who held it when it closed) and per number. One query on
    PostgreSQL (three elsewhere), and one for the agents' names."""
    events = (
        _events(f, _TIMED)
        .filter(since__isnull=False)
        .annotate(
            who=Case(
                When(kind=ConversationEvent.Kind.REPLIED, then=F("actor_id")),
                default=F("to_user_id"),
                output_field=IntegerField(),
            ),
            number=F("conversation__session_id"),
        )
    )
    if connection.vendor == "postgresql":
        total, per_agent, per_number = _grouped_timings(events)
    else:
        total = _timings(events, [])[0]
        per_agent = _timings(events, ["who"])
        per_number = _timings(events, ["number"])
    ids = {row["who"] for row in per_agent if row["who"] is not None}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)} if ids else {}
    names = (
        dict(
            WhatsAppSession.objects.filter(pk__in=[r["number"] for r in per_number]).values_list(
                "pk", "name"
            )
        )
        if per_number
        else {}
    )
    for row in per_agent:
        user = users.get(row["who"])
        row["name"] = (user.get_full_name() or user.get_username()) if user else ""
    for row in per_number:
        row["name"] = names.get(row["number"], "")
    per_agent.sort(key=lambda r: (r["who"] is None, r["name"].lower()))
    per_number.sort(key=lambda r: r["name"].lower())
    return {"total": total, "per_agent": per_agent, "per_number": per_number}


def waiting_now(f: ReportFilters) -> dict[str, Any]:
    """Conversations (not closed) whose customer waits for an answer now, and since when
    the longest has waited, per number and in all: one grouped query."""
    qs = Conversation.objects.filter(_conversation_scope(f), waiting_since__isnull=False).exclude(
        status=Conversation.Status.CLOSED
    )
    if f.agent_id is not None:
        qs = qs.filter(assigned_to_id=f.agent_id)
    rows = list(
        qs.values("session_id", "session__name")
        .annotate(waiting=Count("pk"), oldest=Min("waiting_since"))
        .order_by("session__name", "session_id")
    )
    now = timezone.now()
    per_number = [
        {
            "number": r["session_id"],
            "name": r["session__name"],
            "waiting": r["waiting"],
            "oldest_since": r["oldest"],
            "oldest_seconds": max(0.0, (now - r["oldest"]).total_seconds()),
        }
        for r in rows
    ]
    oldest = min((r["oldest_since"] for r in per_number), default=None)
    return {
        "waiting": sum(r["waiting"] for r in per_number),
        "oldest_since": oldest,
        "oldest_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
        "per_number": per_number,
    }


@dataclass
class Report:
    filters: ReportFilters
    messages: list[dict]
    hours: list[list[int]]
    conversations: list[dict]
    times: dict[str, Any]
    waiting: dict[str, Any]


def report_build(*, filters: ReportFilters) -> Report:
    """Every figure of the report (five queries; seven on SQLite). Planned for their
    dates each time: they read many rows, and a plan made without them could read more."""
    with planned_each_time():
        messages, hours = messages_per_day(filters)
        return Report(
            filters=filters,
            messages=messages,
            hours=hours,
            conversations=conversations_per_day(filters),
            times=response_times(filters),
            waiting=waiting_now(filters),
        )
