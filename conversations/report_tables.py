"""A report as data: the tables the page shows and exports as CSV (raw figures, with
each column's kind for display), and the JSON shape the charts and the REST API read."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from conversations.report_selectors import Report


def _timing(row: dict, prefix: str) -> dict[str, Any]:
    return {
        "count": row[f"{prefix}_count"],
        "median_seconds": row[f"{prefix}_median"],
        "p90_seconds": row[f"{prefix}_p90"],
    }


def _weekdays() -> list[str]:
    return [
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    ]


def report_json(report: Report) -> dict[str, Any]:
    """Every figure, as JSON (dates ISO, times in seconds)."""
    f = report.filters
    times = report.times
    waiting = report.waiting
    oldest = waiting["oldest_since"]
    return {
        "period": {
            "from": f.first_day.isoformat(),
            "to": f.last_day.isoformat(),
            "time_zone": str(f.zone),
        },
        "messages": [{**row, "day": row["day"].isoformat()} for row in report.messages],
        "conversations": [{**row, "day": row["day"].isoformat()} for row in report.conversations],
        "first_response": _timing(times["total"], "first"),
        "resolution": _timing(times["total"], "resolution"),
        "per_agent": [
            {
                "agent_id": row["who"],
                "name": row["name"],
                "first_response": _timing(row, "first"),
                "resolution": _timing(row, "resolution"),
            }
            for row in times["per_agent"]
        ],
        "per_number": [
            {
                "number_id": row["number"],
                "name": row["name"],
                "first_response": _timing(row, "first"),
                "resolution": _timing(row, "resolution"),
            }
            for row in times["per_number"]
        ],
        "waiting": {
            "waiting": waiting["waiting"],
            "oldest_since": oldest.isoformat() if oldest else None,
            "oldest_seconds": waiting["oldest_seconds"],
            "per_number": [
                {
                    "number_id": row["number"],
                    "name": row["name"],
                    "waiting": row["waiting"],
                    "oldest_since": row["oldest_since"].isoformat(),
                    "oldest_seconds": row["oldest_seconds"],
                }
                for row in waiting["per_number"]
            ],
        },
        "busiest_hours": report.hours,
    }


def chart_labels() -> dict[str, Any]:
    """The charts' words, in the page's language."""
    return {
        "inbound": _("Customers' messages"),
        "agents": _("Agents' replies"),
        "automatic": _("Automatic"),
        "phone": _("From the phone"),
        "new": pgettext("conversations", "New"),
        "reopened": pgettext("conversations", "Reopened"),
        "closed": pgettext("conversations", "Closed"),
        "first_median": _("First response, median"),
        "first_p90": _("First response, 90th percentile"),
        "resolution_median": _("Resolution, median"),
        "resolution_p90": _("Resolution, 90th percentile"),
        "minutes": _("minutes"),
        "hour": _("Hour"),
        "no_agent": _("No agent"),
        "weekdays": _weekdays(),
    }


def _timing_columns() -> list[tuple[str, str]]:
    return [
        (_("First responses"), "int"),
        (_("First response, median"), "duration"),
        (_("First response, 90th percentile"), "duration"),
        (pgettext("conversations", "Closed"), "int"),
        (_("Resolution, median"), "duration"),
        (_("Resolution, 90th percentile"), "duration"),
    ]


def _timing_cells(row: dict) -> list:
    return [
        row["first_count"],
        row["first_median"],
        row["first_p90"],
        row["resolution_count"],
        row["resolution_median"],
        row["resolution_p90"],
    ]


def report_tables(report: Report) -> list[dict[str, Any]]:
    """The report's tables: ``id`` (also the CSV's name), ``title``, ``head``, ``kinds``
    (how each column reads: day, int, duration, text, datetime) and ``rows``."""
    day_head = _("Day")
    tables = [
        {
            "id": "messages",
            "title": _("Messages per day"),
            "columns": [
                (day_head, "day"),
                (_("Customers' messages"), "int"),
                (_("Agents' replies"), "int"),
                (_("Automatic"), "int"),
                (_("From the phone"), "int"),
            ],
            "rows": [
                [r["day"], r["inbound"], r["agents"], r["automatic"], r["phone"]]
                for r in report.messages
            ],
        },
        {
            "id": "conversations",
            "title": _("Conversations per day"),
            "columns": [
                (day_head, "day"),
                (pgettext("conversations", "New"), "int"),
                (pgettext("conversations", "Reopened"), "int"),
                (pgettext("conversations", "Closed"), "int"),
            ],
            "rows": [
                [r["day"], r["new"], r["reopened"], r["closed"]] for r in report.conversations
            ],
        },
        {
            "id": "agents",
            "title": _("Response and resolution times per agent"),
            "columns": [(_("Agent"), "text"), *_timing_columns()],
            "rows": [
                [r["name"] or _("No agent"), *_timing_cells(r)] for r in report.times["per_agent"]
            ],
        },
        {
            "id": "numbers",
            "title": _("Response and resolution times per number"),
            "columns": [(_("Number"), "text"), *_timing_columns()],
            "rows": [[r["name"], *_timing_cells(r)] for r in report.times["per_number"]],
        },
        {
            "id": "waiting",
            "title": _("Waiting for an answer now"),
            "columns": [
                (_("Number"), "text"),
                (_("Conversations waiting"), "int"),
                (_("Oldest wait"), "duration"),
                (_("Waiting since"), "datetime"),
            ],
            "rows": [
                [r["name"], r["waiting"], r["oldest_seconds"], r["oldest_since"]]
                for r in report.waiting["per_number"]
            ],
        },
        {
            "id": "hours",
            "title": _("Busiest hours (customers' messages)"),
            "columns": [(_("Weekday"), "text"), *[(f"{h:02d}h", "int") for h in range(24)]],
            "rows": [[name, *report.hours[i]] for i, name in enumerate(_weekdays())],
        },
    ]
    for table in tables:
        table["head"] = [name for name, _kind in table["columns"]]
        table["kinds"] = [kind for _name, kind in table["columns"]]
        table["cells"] = [list(zip(row, table["kinds"], strict=True)) for row in table["rows"]]
    return tables
