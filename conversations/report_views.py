"""The reports page and its tables as CSV. The figures come from
``conversations.report_selectors`` (the access rule and every query); the page draws
them as charts (static/js/reports.js) beside the same figures in tables."""

from __future__ import annotations

import csv
from datetime import date, datetime

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from conversations.report_selectors import (
    DEFAULT_PRESET,
    Report,
    ReportChoices,
    report_build,
    report_choices,
    report_filters,
)
from conversations.report_tables import chart_labels, report_json, report_tables
from vbcrm.errors import error_items
from vbcrm.types import AuthedRequest


def _choices(request: AuthedRequest) -> ReportChoices:
    number = request.GET.get("number", "")
    return report_choices(
        user=request.user, session_id=int(number) if number.isdigit() and len(number) < 19 else None
    )


@login_required
@require_GET
def reports(request: AuthedRequest) -> HttpResponse:
    choices = _choices(request)
    report: Report | None = None
    errors: dict[str, str] = {}
    try:
        filters = report_filters(user=request.user, params=request.GET, choices=choices)
    except ValidationError as exc:
        errors = {field or "range": message for field, _code, message in error_items(exc)}
    else:
        report = report_build(filters=filters)
    context = {
        "choices": choices,
        "params": {
            "range": request.GET.get("range") or DEFAULT_PRESET,
            "from": request.GET.get("from", ""),
            "to": request.GET.get("to", ""),
            "number": request.GET.get("number", ""),
            "queue": request.GET.get("queue", ""),
            "agent": request.GET.get("agent", ""),
        },
        "presets": [
            ("today", _("Today")),
            ("7", _("Last 7 days")),
            ("30", _("Last 30 days")),
            ("90", _("Last 90 days")),
            ("custom", _("Custom")),
        ],
        "errors": errors,
        "report": report,
        "tables": report_tables(report) if report else [],
        "data": report_json(report) if report else None,
        "labels": chart_labels(),
        "query": request.GET.urlencode(),
    }
    return render(request, "conversations/reports.html", context, status=400 if errors else 200)


@login_required
@require_GET
def reports_csv(request: AuthedRequest, table: str) -> HttpResponse:
    """One of the page's tables as CSV: UTF-8 with a byte order mark, so spreadsheet
    programs read the accents right."""
    try:
        filters = report_filters(user=request.user, params=request.GET, choices=_choices(request))
    except ValidationError as exc:
        text = "; ".join(message for _field, _code, message in error_items(exc))
        return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
    wanted = [t for t in report_tables(report_build(filters=filters)) if t["id"] == table]
    if not wanted:
        raise Http404
    found = wanted[0]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{table}-{filters.first_day:%Y%m%d}-{filters.last_day:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(found["head"])
    for row in found["rows"]:
        writer.writerow([_cell(v) for v in row])
    return response


def _cell(value: object) -> object:
    """Raw figures in the CSV (ISO dates, whole seconds): what a spreadsheet computes with."""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value)
    return "" if value is None else value
