"""A number's business hours: a weekly schedule in its time zone, plus dated exceptions.

Stored in ``NumberSettings.business_hours`` as JSON::

    {"weekly": {"mon": [["08:00", "12:00"], ["13:00", "18:00"]], "sat": [], ...},
     "exceptions": [{"date": "2026-12-25", "hours": []},
                    {"date": "2026-12-24", "hours": [["08:00", "12:00"]]}]}

A day missing from ``weekly`` (or with no intervals) is closed. An interval is
``[start, end)`` within one day; ``"24:00"`` ends it at midnight. Hours past midnight are
two intervals, ``"22:00"–"24:00"`` on one day and ``"00:00"–"02:00"`` on the next: they
join into one open period, so nothing happens at midnight. An exception replaces the
weekly intervals of its date (``[]``: closed all day).

Pure functions: no database, no Django models. The form text is one line per day,
``08:00-12:00, 13:00-18:00`` (``closed`` or empty for none), and one line per exception,
``2026-12-25 closed`` or ``2026-12-24 08:00-12:00``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils.translation import gettext as _

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_END_OF_DAY = 24 * 60
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_CLOSED_WORDS = {"", "closed", "fechado", "-"}
MAX_EXCEPTIONS = 366


class ScheduleError(ValueError):
    """Bad schedule input; ``field`` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """Parsed business hours: minutes since midnight, per weekday (0 = Monday) and date."""

    weekly: tuple[tuple[tuple[int, int], ...], ...]
    exceptions: dict[date, tuple[tuple[int, int], ...]]

    def intervals_on(self, day: date) -> tuple[tuple[int, int], ...]:
        found = self.exceptions.get(day)
        return found if found is not None else self.weekly[day.weekday()]

    @property
    def empty(self) -> bool:
        return not any(self.weekly) and not any(self.exceptions.values())


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; ScheduleError on ``time_zone`` when unknown."""
    name = (name or "").strip()
    try:
        if not name or name not in _zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            "time_zone",
            _("Unknown time zone %(name)r: use a name such as America/Sao_Paulo.") % {"name": name},
        ) from None


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def _minutes(text: str, field: str) -> int:
    m = _TIME.match(text.strip())
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ScheduleError(field, _("%(value)r is not a time (HH:MM).") % {"value": text.strip()})
    return int(m.group(1)) * 60 + int(m.group(2))


def _intervals(raw: list, field: str) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for pair in raw:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ScheduleError(field, _("Each interval is a start and an end."))
        start, end = _minutes(str(pair[0]), field), _minutes(str(pair[1]), field)
        if start >= _END_OF_DAY:
            raise ScheduleError(field, _("An interval cannot start at 24:00."))
        if end <= start:
            raise ScheduleError(
                field,
                _(
                    "%(start)s-%(end)s ends before it starts. For hours past midnight, end "
                    "the day at 24:00 and go on the next day from 00:00."
                )
                % {"start": pair[0], "end": pair[1]},
            )
        out.append((start, end))
    out.sort()
    for (_s1, e1), (s2, _e2) in zip(out, out[1:], strict=False):
        if s2 < e1:
            raise ScheduleError(field, _("Two intervals of this day overlap."))
    return tuple(out)


def parse(data: dict | None) -> Schedule:
    """The schedule in ``data`` (the stored JSON); ScheduleError naming the bad field."""
    data = data or {}
    if not isinstance(data, dict):
        raise ScheduleError("business_hours", _("Business hours must be an object."))
    weekly_raw = data.get("weekly") or {}
    if not isinstance(weekly_raw, dict) or set(weekly_raw) - set(DAYS):
        raise ScheduleError("business_hours", _("Unknown day in the weekly schedule."))
    weekly = tuple(_intervals(weekly_raw.get(day) or [], f"hours_{day}") for day in DAYS)
    exceptions: dict[date, tuple[tuple[int, int], ...]] = {}
    raw_exceptions = data.get("exceptions") or []
    if not isinstance(raw_exceptions, list) or len(raw_exceptions) > MAX_EXCEPTIONS:
        raise ScheduleError(
            "exceptions", _("At most %(n)d dated exceptions.") % {"n": MAX_EXCEPTIONS}
        )
    for item in raw_exceptions:
        if not isinstance(item, dict):
            raise ScheduleError("exceptions", _("Each exception is a date and its hours."))
        try:
            day = date.fromisoformat(str(item.get("date", "")))
        except ValueError:
            raise ScheduleError(
                "exceptions",
                _("%(value)r is not a date (YYYY-MM-DD).") % {"value": item.get("date")},
            ) from None
        if day in exceptions:
            raise ScheduleError(
                "exceptions", _("%(day)s is listed twice.") % {"day": day.isoformat()}
            )
        exceptions[day] = _intervals(item.get("hours") or [], "exceptions")
    return Schedule(weekly=weekly, exceptions=exceptions)


def is_open(schedule: Schedule, tz: ZoneInfo, now: datetime) -> bool:
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    return any(s <= minute < e for s, e in schedule.intervals_on(local.date()))


def next_change(schedule: Schedule, tz: ZoneInfo, now: datetime) -> datetime | None:
    """When the number next opens or closes (within 8 days), or None when it never does."""
    state = is_open(schedule, tz, now)
    local = now.astimezone(tz)
    day = local.date()
    for offset in range(9):
        current = day + timedelta(days=offset)
        edges = sorted({m for pair in schedule.intervals_on(current) for m in pair} | {0})
        for minute in edges:
            at = _at(current, minute, tz)
            if at > now and is_open(schedule, tz, at) != state:
                return at
    return None


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= _END_OF_DAY:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)


# --- The form's text <-> the stored JSON ------------------------------------------------


def _fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def day_text(intervals: list) -> str:
    return ", ".join(f"{a}-{b}" for a, b in intervals) if intervals else ""


def text_intervals(text: str, field: str) -> list[list[str]]:
    """``"08:00-12:00, 13:00-18:00"`` -> ``[["08:00", "12:00"], ["13:00", "18:00"]]``."""
    text = (text or "").strip()
    if text.casefold() in _CLOSED_WORDS:
        return []
    out = []
    for part in re.split(r"[,;]", text):
        part = part.strip()
        if not part:
            continue
        bits = re.split(r"\s*(?:-|–|—|to|até|a)\s*", part, maxsplit=1)
        if len(bits) != 2:
            raise ScheduleError(
                field, _("%(value)r is not an interval (08:00-12:00).") % {"value": part}
            )
        start, end = (_fmt(_minutes(b, field)) for b in bits)
        out.append([start, end])
    return out


def exceptions_text(exceptions: list) -> str:
    lines = []
    for item in exceptions or []:
        hours = day_text(item.get("hours") or [])
        lines.append(f"{item.get('date')} {hours or 'closed'}")
    return "\n".join(lines)


def text_exceptions(text: str) -> list[dict]:
    """One line per date: ``2026-12-25 closed`` or ``2026-12-24 08:00-12:00, 14:00-16:00``."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        day, _sep, rest = line.partition(" ")
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ScheduleError(
                "exceptions", _("%(value)r is not a date (YYYY-MM-DD).") % {"value": day}
            ) from None
        out.append({"date": day, "hours": text_intervals(rest, "exceptions")})
    return out
