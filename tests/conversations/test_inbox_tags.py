"""The inbox's template helpers: each one that folds several tags and filters into one
(``msg_times``, ``msg_day``, ``msg_strings``, ``list_row``, ``number_options``) must give
exactly what they gave, in every language (and, for times, time zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.template import engines
from django.urls import clear_script_prefix, reverse, set_script_prefix
from django.utils import timezone, translation

from conversations.models import Contact, Conversation, Message
from conversations.templatetags.inbox import (
    conversation_url,
    list_times,
    msg_day,
    msg_strings,
    msg_times,
)
from whatsapp.models import WhatsAppSession

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
    "{% load i18n %}{{ t|date:'c' }}|{% if t %}{% now 'Y-m-d' as today %}"
    "{% if t|date:'Y-m-d' == today %}{{ t|time:'H:i' }}"
    "{% elif t|date:'Y-m-d' == yesterday %}{% translate 'Yesterday' %}"
    "{% else %}{{ t|date:'SHORT_DATE_FORMAT' }}{% endif %}{% endif %}"
)


@pytest.mark.parametrize("lang", ["en", "pt-br"])
@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "UTC", "Asia/Kolkata"])
def test_list_times_matches_the_date_filters(lang, zone):
    now = timezone.now()
    moments = [now, now - timedelta(days=1), now - timedelta(days=3), None]
    with translation.override(lang), timezone.override(zone):
        for moment in moments:
            times = list_times(moment)
            yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
            expected = ROW_FILTERS.render({"t": moment, "yesterday": yesterday})
            assert f"{times['iso']}|{times['label']}" == expected


# --- list rows and message fragments -------------------------------------------------------

ROW_TAGS = engines["django"].from_string(
    "{% load i18n inbox %}{% url 'conversations:detail' c.pk %}|{{ c.pk }}|"
    "{{ c.last_message_at|epoch_ms }}|{{ c.unread_count }}|{{ c.session_id }}|"
    "{{ c.assigned_to_id|default:'' }}|"
    '{{ c.contact.display_name|slice:":1"|upper }}|{{ c.contact.display_name }}|'
    "{% with when=c.last_message_at|list_times %}{{ when.iso }}|{{ when.label }}{% endwith %}|"
    "{% if c.unread_count %}{% blocktranslate count n=c.unread_count %}{{ n }} unread message"
    "{% plural %}{{ n }} unread messages{% endblocktranslate %}{% endif %}|"
    "{{ c.get_status_display }}|{{ c.session.name }}|"
    "{% if c.assigned_to %}{{ c.assigned_to|user_label }}{% endif %}"
)
ROW_FILTER = engines["django"].from_string(
    "{% load inbox %}{% with r=c|list_row %}{{ r.url }}|{{ r.id }}|{{ r.ts }}|{{ r.unread }}|"
    "{{ r.session }}|{{ r.assigned }}|"
    "{{ r.initial }}|{{ r.name }}|{{ r.iso }}|{{ r.label }}|{{ r.badge }}|{{ r.status }}|"
    "{{ r.number }}|{{ r.agent }}{% endwith %}"
)


def _row(pk: int, status: str, unread: int, agent: User | None) -> Conversation:
    return Conversation(
        pk=pk,
        status=status,
        unread_count=unread,
        last_message_at=timezone.now() - timedelta(hours=pk),
        session=WhatsAppSession(pk=3, name="Sales & support"),
        contact=Contact(pk=pk, push_name="élise <b>", phone="5511999990000"),
        assigned_to=agent,
    )


@pytest.mark.parametrize("lang", ["en", "pt-br"])
def test_list_row_matches_the_tags_it_replaces(lang):
    agent = User(pk=7, username="bob", first_name="Bob", last_name="Silva")
    rows = [
        _row(1, Conversation.Status.OPEN, 0, None),
        _row(22, Conversation.Status.PENDING, 1, agent),
        _row(333, Conversation.Status.CLOSED, 2, User(pk=8, username="carol")),
        _row(123456, Conversation.Status.OPEN, 1234, None),  # hours ago: another day
    ]
    with translation.override(lang):
        for c in rows:
            assert ROW_FILTER.render({"c": c}) == ROW_TAGS.render({"c": c})


def test_the_conversation_url_follows_the_script_prefix():
    assert conversation_url(42) == reverse("conversations:detail", args=[42])
    set_script_prefix("/crm/")
    try:
        assert conversation_url(42) == "/crm/conversations/42/"
        assert conversation_url(7) == reverse("conversations:detail", args=[7])
    finally:
        clear_script_prefix()
    assert conversation_url(42) == "/conversations/42/"


MESSAGE_TAGS = engines["django"].from_string(
    "{% load inbox %}{{ m.pk }}|{{ m.conversation_id }}|{{ m.updated_at|epoch_us }}|"
    "{{ m|status_rank }}|{{ m.get_status_display }}"
)
MESSAGE_FILTER = engines["django"].from_string(
    "{% load inbox %}{% with t=m|msg_strings %}{{ t.id }}|{{ t.conversation }}|{{ t.version }}|"
    "{{ t.rank }}|{{ t.status_label }}{% endwith %}"
)


@pytest.mark.parametrize("lang", ["en", "pt-br"])
def test_msg_strings_match_the_filters_they_replace(lang):
    now = timezone.now()
    with translation.override(lang):
        for status in Message.Status.values:
            m = Message(
                pk=12345, conversation_id=678, status=status, created_at=now, updated_at=now
            )
            assert MESSAGE_FILTER.render({"m": m}) == MESSAGE_TAGS.render({"m": m})
            assert msg_strings(m)["title"] == msg_times(m)["title"]


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "UTC", "Asia/Kolkata"])
def test_msg_day_matches_the_date_filter(zone):
    moments = [timezone.now(), datetime(2021, 12, 31, 23, 59, tzinfo=UTC)]
    template = engines["django"].from_string("{% load inbox %}{{ m|msg_time|date:'Y-m-d' }}")
    with timezone.override(zone):
        for moment in moments:
            m = Message(wa_timestamp=moment, created_at=moment)
            assert msg_day(m) == template.render({"m": m})


NUMBER_OPTION_TAGS = engines["django"].from_string(
    "{% for s in sessions %}{{ s.pk }}|{% if selected == s.pk %}selected{% endif %}|{{ s.name }}|"
    "{{ s.get_status_display }};{% endfor %}"
)
NUMBER_OPTION_FILTER = engines["django"].from_string(
    "{% load inbox %}{% for s in sessions|number_options:selected %}{{ s.id }}|"
    "{% if s.selected %}selected{% endif %}|{{ s.name }}|{{ s.status }};{% endfor %}"
)


@pytest.mark.parametrize("lang", ["en", "pt-br"])
def test_number_options_match_the_tags_they_replace(lang):
    sessions = [
        WhatsAppSession(pk=pk, name=f"Sales <{pk}>", status=status)
        for pk, status in enumerate(WhatsAppSession.Status.values, start=1)
    ]
    with translation.override(lang):
        for selected in (None, 2):
            context = {"sessions": sessions, "selected": selected}
            assert NUMBER_OPTION_FILTER.render(context) == NUMBER_OPTION_TAGS.render(context)
