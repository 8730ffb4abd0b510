"""The reports' figures against a fixture computed by hand (America/Sao_Paulo, UTC-3).

Monday 2026-03-02 (D1) and Tuesday 2026-03-03 (D2), local times:

Conversation A (reopened twice):
  D1 12:00 customer writes (opens)      12:10 bob replies (first response 600 s, bob)
  D1 13:00 alice closes it, bob holds it (resolution 3600 s, bob)
  D1 14:00 customer writes: reopened    14:30 bob replies (1800 s, bob)
  D1 15:00 bob closes it (3600 s, bob)
  D2 09:00 customer writes: reopened    09:05 alice replies (300 s, alice)
  D2 09:10 alice takes it               11:00 alice closes it (7200 s, alice)
Conversation B (never answered): D1 22:30 customer writes (01:30 UTC on D2: a day apart),
  D1 22:31 the bot answers automatically. Still waiting.
Conversation C: D2 23:50 customer writes, D3 00:10 someone answers from the phone (the
  first response falls on D3, outside a D1..D2 report).
Charlie's number: one conversation on D1, answered and closed, never in alice's figures.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from conversations import services
from conversations.report_selectors import report_build, report_filters
from conversations.report_sql import percentile_cont
from tests.report_fixture import D1, D2, D3, RANGE, SP, _now, at, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fixture(settings, number, alice, bob, charlie):
    settings.TIME_ZONE = "America/Sao_Paulo"
    return build(number, alice, bob, charlie)


def _report(user, **params):
    with timezone.override(SP):
        return report_build(filters=report_filters(user=user, params={**RANGE, **params}))


def test_it_counts_messages_per_day_apart_by_who_sent_them(fixture, alice):
    report = _report(alice)
    assert report.messages == [
        {"day": D1, "inbound": 3, "agents": 2, "automatic": 1, "phone": 0},
        {"day": D2, "inbound": 2, "agents": 1, "automatic": 0, "phone": 0},
    ]


def test_the_phone_reply_after_midnight_falls_on_the_next_day(fixture, alice):
    report = _report(alice, to="2026-03-04")
    assert report.messages[2] == {
        "day": D3,
        "inbound": 0,
        "agents": 0,
        "automatic": 0,
        "phone": 1,
    }
    assert report.times["total"]["first_count"] == 4


def test_it_counts_new_reopened_and_closed_conversations_per_day(fixture, alice):
    assert _report(alice).conversations == [
        {"day": D1, "new": 2, "reopened": 1, "closed": 2},
        {"day": D2, "new": 1, "reopened": 1, "closed": 1},
    ]


def test_first_response_and_resolution_times(fixture, alice, bob):
    times = _report(alice).times
    total = times["total"]
    assert total["first_count"] == 3
    assert total["first_median"] == pytest.approx(600)
    assert total["first_p90"] == pytest.approx(1560)  # 600 + 0.8 * (1800 - 600)
    assert total["resolution_count"] == 3
    assert total["resolution_median"] == pytest.approx(3600)
    assert total["resolution_p90"] == pytest.approx(6480)  # 3600 + 0.8 * (7200 - 3600)
    agents = {row["who"]: row for row in times["per_agent"]}
    assert set(agents) == {alice.pk, bob.pk}
    assert agents[bob.pk]["first_count"] == 2
    assert agents[bob.pk]["first_median"] == pytest.approx(1200)
    assert agents[bob.pk]["first_p90"] == pytest.approx(1680)
    assert agents[bob.pk]["resolution_median"] == pytest.approx(3600)
    assert agents[alice.pk]["first_median"] == pytest.approx(300)
    assert agents[alice.pk]["resolution_count"] == 1
    assert agents[alice.pk]["resolution_p90"] == pytest.approx(7200)
    [number_row] = times["per_number"]
    assert number_row["name"] == "Support"
    assert number_row["first_p90"] == pytest.approx(1560)


def test_the_never_answered_conversation_waits(fixture, alice):
    waiting = _report(alice).waiting
    assert waiting["waiting"] == 1
    assert waiting["oldest_since"] == at(D1, 22, 30)
    assert waiting["oldest_seconds"] > 0


def test_busiest_hours_are_the_customers_messages_by_local_weekday_and_hour(fixture, alice):
    hours = _report(alice).hours
    assert hours[0][12] == 1 and hours[0][14] == 1 and hours[0][22] == 1
    assert hours[1][9] == 1 and hours[1][23] == 1
    assert sum(map(sum, hours)) == 5


def test_in_utc_the_late_message_moves_to_the_next_day(fixture, alice):
    with timezone.override(UTC):
        filters = report_filters(user=alice, params=RANGE)
        report = report_build(filters=filters)
    # B's 22:30 is 01:30 UTC on D2; A's D1 messages stay on D1.
    assert [row["inbound"] for row in report.messages] == [2, 2]
    assert report.hours[1][1] == 1


def test_an_agent_sees_only_their_own_figures(fixture, bob, alice):
    report = _report(bob, agent=str(alice.pk))
    assert report.filters.own_only and report.filters.agent_id == bob.pk
    assert [row["agents"] for row in report.messages] == [2, 0]
    assert [row["who"] for row in report.times["per_agent"]] == [bob.pk]
    assert report.times["total"]["first_count"] == 2


def test_another_owners_data_never_appears(fixture, alice, charlie):
    mine = _report(charlie)
    assert [row["inbound"] for row in mine.messages] == [1, 0]
    assert [row["name"] for row in mine.times["per_number"]] == ["Other"]
    theirs = _report(alice)
    assert "Other" not in [row["name"] for row in theirs.times["per_number"]]
    with pytest.raises(Exception) as err:
        report_filters(user=alice, params={**RANGE, "number": str(fixture["other"].pk)})
    assert "number" in err.value.message_dict  # type: ignore[attr-defined]


def test_someone_with_no_number_gets_an_empty_report(fixture, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x")  # noqa: S106
    report = _report(nobody)
    assert report.filters.session_ids == ()
    assert sum(row["inbound"] for row in report.messages) == 0
    assert report.times["total"]["first_count"] == 0
    assert report.times["total"]["first_median"] is None
    assert report.times["per_agent"] == [] and report.times["per_number"] == []
    assert report.waiting["waiting"] == 0


def test_the_page_and_api_refuse_another_owners_number(fixture, client, alice):
    client.force_login(alice)
    other = fixture["other"].pk
    page = client.get(reverse("reports:page"), {**RANGE, "number": other})
    assert page.status_code == 400
    api = client.get("/api/whatsapp/reports", {**RANGE, "number": other})
    assert api.status_code == 422


def test_staff_see_every_number(fixture, django_user_model):
    staff = django_user_model.objects.create_user(username="root", is_staff=True)
    names = [row["name"] for row in _report(staff).times["per_number"]]
    assert sorted(names) == ["Other", "Support"]


def test_bad_periods_are_refused_by_field(alice, number):
    cases = [
        ({"range": "forever"}, "range"),
        ({"range": "custom", "from": "2026-03-05", "to": "2026-03-01"}, "to"),
        ({"range": "custom", "from": "nope", "to": "2026-03-01"}, "from"),
        ({"range": "custom", "from": "2024-01-01", "to": "2026-03-01"}, "to"),
        ({"agent": "x"}, "agent"),
    ]
    for params, field in cases:
        with pytest.raises(Exception) as err:
            report_filters(user=alice, params=params)
        assert field in err.value.message_dict, params  # type: ignore[attr-defined]


def test_presets_end_today_in_the_users_time_zone(settings, alice, number):
    # 02:00 UTC on the 3rd is still the 2nd in São Paulo.
    with _now(datetime(2026, 3, 3, 2, tzinfo=UTC)), timezone.override(SP):
        today = report_filters(user=alice, params={"range": "today"})
        week = report_filters(user=alice, params={"range": "7"})
    assert today.first_day == today.last_day == D1
    assert (week.first_day, week.last_day) == (D1 - timedelta(days=6), D1)
    assert today.start == at(D1, 0) and today.end == at(D2, 0)


def test_percentile_matches_percentile_cont():
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([5.0], 0.9) == 5.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile_cont([10.0, 0.0, 20.0], 0.9) == pytest.approx(18.0)


def test_the_csv_is_utf8_with_a_bom_and_the_tables_figures(fixture, client, alice):
    client.force_login(alice)
    response = client.get(reverse("reports:csv", args=["conversations"]), RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1:] == [["2026-03-02", "2", "1", "2"], ["2026-03-03", "1", "1", "1"]]

    times = client.get(
        reverse("reports:csv", args=["agents"]), {**RANGE}, HTTP_ACCEPT_LANGUAGE="pt-br"
    )
    text = times.content.decode("utf-8-sig")
    assert "bob" in text and "1200" in text


def test_the_csv_of_an_unknown_table_is_not_found(client, alice, number):
    client.force_login(alice)
    assert client.get(reverse("reports:csv", args=["nope"])).status_code == 404


def test_the_api_answers_the_same_figures(fixture, client, alice):
    client.force_login(alice)
    response = client.get("/api/whatsapp/reports", RANGE)
    assert response.status_code == 200
    data = response.json()
    assert data["period"] == {
        "from": "2026-03-02",
        "to": "2026-03-03",
        "time_zone": "America/Sao_Paulo",
    }
    assert data["messages"][0] == {
        "day": "2026-03-02",
        "inbound": 3,
        "agents": 2,
        "automatic": 1,
        "phone": 0,
    }
    assert data["first_response"]["median_seconds"] == pytest.approx(600)
    assert data["resolution"]["p90_seconds"] == pytest.approx(6480)
    assert data["waiting"]["waiting"] == 1
    assert len(data["busiest_hours"]) == 7 and len(data["busiest_hours"][0]) == 24


def test_the_page_shows_every_table(fixture, client, alice, django_assert_max_num_queries):
    client.force_login(alice)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("reports:page"), RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    for table_id in ("messages", "conversations", "agents", "numbers", "waiting", "hours"):
        assert f'id="table-{table_id}"' in html
    assert 'id="report-data"' in html


def test_status_changes_are_recorded_without_showing_in_the_thread(conversation, alice):
    from conversations.queue_selectors import conversation_events

    services.conversation_set_status(conversation=conversation, status="closed", by=alice)
    services.conversation_set_status(conversation=conversation, status="open", by=alice)
    kinds = list(conversation.routing_events.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["closed", "reopened"]
    assert conversation_events(conversation_id=conversation.pk) == []


def test_the_report_s_statements_are_planned_for_their_dates_each_time(fixture, alice, prepares):
    # Prepared after five runs, a statement may get a plan made without its dates; the
    # report's read many rows and are never prepared (vbcrm/db/plans.py).
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # the fixture's own (psycopg forgets them too)
        for _ in range(7):
            _report(alice)
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [s for (s,) in cursor.fetchall()]
    assert not [s for s in prepared if "whatsapp_mensagens" in s or "conversation_events" in s]
    # while a short read repeated as often is
    for _ in range(7):
        report_filters(user=alice, params=RANGE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] > 0
