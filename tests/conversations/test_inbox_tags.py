"""The inbox's template helpers: ``msg_times`` must give exactly what the ``date`` and
``time`` filters it replaces gave, in every language and time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import engines
from django.utils import timezone, translation

from conversations.models import Message
from conversations.templatetags.inbox import list_times, msg_times

FILTERS = engines["django"].from_string(
    "{% load inbox %}{{ t|date:'Y-m-d' }}|{{ t|day_label }}|{{ t|date:'c' }}|"
    "{{ t|date:'DATETIME_FORMAT' }}|{{ t|time:'H:i' }}"
)


@pytest.mark.parametrize("lang", ["en", "pt-br"])
@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "UTC", "Asia/Kolkata"])
def test_msg_times_matches_the_date_filters(lang, zone):
    now = timezone.now()
    moments = [
        now,
        now - timedelta(days=1),
        now - timedelta(days=40),
        datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2021, 12, 31, 23, 59, tzinfo=UTC),  # another day in some zones
    ]
    with translation.override(lang), timezone.override(zone):
        for moment in moments:
            times = msg_times(Message(wa_timestamp=moment, created_at=now))
            got = "|".join(times[k] for k in ("day", "day_label", "iso", "title", "hm"))
            assert got == FILTERS.render({"t": moment})


def test_msg_times_falls_back_to_when_the_message_was_stored():
    stored = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
    with timezone.override("UTC"):
        assert msg_times(Message(wa_timestamp=None, created_at=stored))["hm"] == "07:08"


ROW_FILTERS = engines["django"].from_string(
    "{% load inbox %}{{ t|date:'c' }}|{% if t %}{% now 'Y-m-d' as today %}"
    "{% if t|date:'Y-m-d' == today %}{{ t|time:'H:i' }}{% else %}{{ t|list_when }}{% endif %}"
    "{% endif %}"
)


@pytest.mark.parametrize("lang", ["en", "pt-br"])
@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "UTC", "Asia/Kolkata"])
def test_list_times_matches_the_date_filters(lang, zone):
    now = timezone.now()
    moments = [now, now - timedelta(days=1), now - timedelta(days=3), None]
    with translation.override(lang), timezone.override(zone):
        for moment in moments:
            times = list_times(moment)
            assert f"{times['iso']}|{times['label']}" == ROW_FILTERS.render({"t": moment})
