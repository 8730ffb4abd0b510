"""How the reports page writes its figures: durations in words, counts in the page's
language (the CSV keeps the raw figures)."""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import formats, timezone
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``4 min``, ``1 h 05 min``, ``2 d 3 h``; a dash when there is no figure."""
    if seconds is None:
        return "–"
    total = round(seconds)
    if total < 60:
        return _("%(n)d s") % {"n": total}
    minutes, _secs = divmod(total, 60)
    if minutes < 60:
        return _("%(n)d min") % {"n": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)d d %(h)d h") % {"d": days, "h": hours}


@register.filter
def report_cell(value: object, kind: str) -> str:
    """A table cell by its column's kind (see ``report_tables``)."""
    if kind == "duration":
        return duration(value)  # type: ignore[arg-type]
    if kind == "int":
        return formats.number_format(
            value if isinstance(value, int | float) else 0, decimal_pos=0, force_grouping=True
        )
    if kind == "datetime" and isinstance(value, datetime):
        return date_filter(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    if kind == "day" and isinstance(value, date):
        return date_filter(value, "D d/m")
    return "" if value is None else str(value)
