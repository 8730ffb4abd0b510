"""A number's automatic replies page: only its owner sees and changes it; a refused form
comes back with each field's message and what was typed, and saves nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conversations.services import autoreply
from whatsapp.models import KeywordRule, NumberSettings

pytestmark = pytest.mark.django_db


def _as(client: Client, user) -> Client:
    client.force_login(user)
    return client


def form(**changes) -> dict:
    data = {
        "time_zone": "America/Sao_Paulo",
        "hours_enabled": "on",
        "hours_mon": "08:00-12:00, 13:00-18:00",
        "hours_tue": "08:00-18:00",
        "hours_wed": "",
        "hours_thu": "",
        "hours_fri": "22:00-24:00",
        "hours_sat": "00:00-02:00",
        "hours_sun": "closed",
        "exceptions": "2026-12-25 closed\n2026-12-24 08:00-12:00",
        "greeting_on": "conversation",
        "greeting_delay_seconds": "3",
        "greeting_message": "Olá, {{nome}}!",
        "greeting_enabled": "on",
        "away_enabled": "on",
        "away_message": "Estamos fora do horário.",
        "away_period_hours": "4",
        "auto_close_hours": "48",
        "auto_close_message": "",
        "auto_daily_cap": "10",
        "agent_silence_minutes": "30",
        "auto_rate_per_minute": "20",
    }
    data.update(changes)
    return data


def test_the_owner_saves_hours_and_messages(client, number, alice):
    response = _as(client, alice).post(f"/conversations/automatic/{number.pk}/", form())
    assert response.status_code == 302
    conf = NumberSettings.objects.get(session=number)
    assert conf.business_hours == {
        "weekly": {
            "mon": [["08:00", "12:00"], ["13:00", "18:00"]],
            "tue": [["08:00", "18:00"]],
            "wed": [],
            "thu": [],
            "fri": [["22:00", "24:00"]],
            "sat": [["00:00", "02:00"]],
            "sun": [],
        },
        "exceptions": [
            {"date": "2026-12-25", "hours": []},
            {"date": "2026-12-24", "hours": [["08:00", "12:00"]]},
        ],
    }
    assert (conf.greeting_enabled, conf.greeting_delay_seconds, conf.auto_close_hours) == (
        True,
        3,
        48,
    )
    page = client.get(f"/conversations/automatic/{number.pk}/").content.decode()
    assert 'value="08:00-12:00, 13:00-18:00"' in page
    assert "2026-12-25 closed" in page
    # Friday 23:30 to Saturday 01:59 in São Paulo is one open period across midnight.
    friday_late = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # Fri 23:30 there
    saturday_early = datetime(2026, 12, 5, 4, 59, tzinfo=UTC)  # Sat 01:59 there
    christmas_eve_afternoon = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)  # Thu 13:00 there
    assert autoreply.number_open_now(conf, friday_late) is True
    assert autoreply.number_open_now(conf, saturday_early) is True
    assert autoreply.number_open_now(conf, datetime(2026, 12, 5, 5, 0, tzinfo=UTC)) is False
    assert autoreply.number_open_now(conf, christmas_eve_afternoon) is False
    assert autoreply.number_open_now(conf, datetime(2026, 12, 24, 12, 0, tzinfo=UTC)) is True


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hours_mon": "18:00-08:00"}, "ends before it starts"),
        ({"hours_tue": "08:00-12:00, 11:00-13:00"}, "overlap"),
        ({"hours_wed": "9h às 18h"}, "is not an interval"),
        ({"hours_thu": "8:00-25:00"}, "is not a time"),
        ({"time_zone": "Brasil/Centro"}, "Unknown time zone"),
        ({"exceptions": "25/12 closed"}, "is not a date"),
        ({"auto_rate_per_minute": "0"}, "Between 1 and 600"),
    ],
)
def test_bad_input_comes_back_with_the_message_and_nothing_saved(
    client, number, alice, changes, message
):
    response = _as(client, alice).post(f"/conversations/automatic/{number.pk}/", form(**changes))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert "Nothing was saved" in page
    for value in changes.values():  # what was typed is still there
        assert value.split("\n")[0] in page
    conf = NumberSettings.objects.get(session=number)
    assert conf.greeting_message == "" and conf.business_hours == {}


def test_agents_and_outsiders_cannot_open_it(client, number, bob, charlie):
    for user in (bob, charlie):
        c = Client()
        c.force_login(user)
        assert c.get(f"/conversations/automatic/{number.pk}/").status_code == 404
        assert c.post(f"/conversations/automatic/{number.pk}/", form()).status_code == 404
    assert NumberSettings.objects.get(session=number).greeting_message == ""
    anonymous = Client().get(f"/conversations/automatic/{number.pk}/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_rules_are_added_edited_moved_and_deleted_by_the_owner_only(client, number, alice, charlie):
    c = _as(client, alice)
    url = f"/conversations/automatic/{number.pk}/rules/"
    c.post(url, {"match": "contains", "pattern": "preço", "answer": "Tabela", "active": "on"})
    c.post(
        url,
        {
            "match": "exact",
            "pattern": "catalogo",
            "answer": "",
            "active": "on",
            "file": SimpleUploadedFile("catalogo.pdf", b"%PDF-1.4", "application/pdf"),
        },
    )
    refused = c.post(url, {"match": "regex", "pattern": "([a-z", "answer": "x"}, follow=True)
    assert "This regular expression does not work" in refused.content.decode()
    first, second = KeywordRule.objects.filter(session=number).order_by("position")
    assert (first.pattern, second.pattern, bool(second.file)) == ("preço", "catalogo", True)

    c.post(f"/conversations/automatic/rules/{second.pk}/move/", {"direction": "up"})
    assert list(
        KeywordRule.objects.filter(session=number).order_by("position").values_list("pk", flat=True)
    ) == [second.pk, first.pk]
    c.post(
        f"/conversations/automatic/rules/{first.pk}/",
        {"match": "starts", "pattern": "preco", "answer": "Tabela nova", "when": "inside"},
    )
    first.refresh_from_db()
    assert (first.match, first.answer, first.when, first.active) == (
        "starts",
        "Tabela nova",
        "inside",
        False,
    )

    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.post(f"/conversations/automatic/rules/{first.pk}/delete/").status_code == 404
    c.post(f"/conversations/automatic/rules/{first.pk}/delete/")
    assert list(KeywordRule.objects.filter(session=number)) == [second]


def test_the_inbox_shows_whether_each_number_is_inside_its_hours(client, number, alice, bob):
    _as(client, alice).post(f"/conversations/automatic/{number.pk}/", form())
    c = Client()
    c.force_login(bob)  # an agent of the number sees it too
    open_time = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday 09:00 in São Paulo
    with mock.patch("django.utils.timezone.now", return_value=open_time):
        page = c.get("/").content.decode()
    assert 'class="hours-chip open"' in page and "Support: open now" in page
    closed_time = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # Wednesday: closed all day
    with mock.patch("django.utils.timezone.now", return_value=closed_time):
        chips = c.get("/conversations/automatic/hours/").content.decode()
    assert 'class="hours-chip closed"' in chips and "outside hours" in chips
