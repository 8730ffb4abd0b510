"""vbcrm.dates: a date as Django's own date_format gives it, its format split once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import formats, translation

from vbcrm.dates import format_date

FORMATS = [
    "SHORT_DATETIME_FORMAT",
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "SHORT_DATE_FORMAT",
    "TIME_FORMAT",
    r"\h\o\j\e j \d\e F, H:i",  # a format string with escaped letters
    "",
]
WHEN = [
    datetime(2026, 1, 5, 9, 7, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0),  # naive: the default time zone
]


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_it_gives_what_django_gives(language):
    with translation.override(language):
        for name in FORMATS:
            for value in WHEN:
                assert format_date(value, name) == formats.date_format(value, name)
            for day in (date(2026, 1, 5), date(2026, 12, 31)):
                if name in ("DATE_FORMAT", "SHORT_DATE_FORMAT"):
                    assert format_date(day, name) == formats.date_format(day, name)


def test_the_language_changes_the_format():
    when = datetime(2026, 11, 30, 15, 4, tzinfo=UTC)
    with translation.override("en"):
        english = format_date(when, "DATE_FORMAT")
    with translation.override("pt-br"):
        portuguese = format_date(when, "DATE_FORMAT")
    assert english != portuguese and "Novembro" in portuguese


def test_a_time_in_a_date_is_refused_as_django_refuses_it():
    with pytest.raises(TypeError) as ours:
        format_date(date(2026, 1, 5), "j H:i")
    with pytest.raises(TypeError) as django:
        formats.date_format(date(2026, 1, 5), "j H:i")
    assert str(ours.value) == str(django.value)
