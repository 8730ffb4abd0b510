"""vbcrm/db: Django's PostgreSQL backend, with timestamps read by psycopg's C loader."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from conversations import services
from conversations.models import Conversation
from tests.factories import inbound
from vbcrm.db.plans import planned_each_time

pytestmark = pytest.mark.django_db


def test_timestamps_read_back_as_django_reads_them(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT '2026-03-01 10:00:00.123456+03'::timestamptz, NULL::timestamptz,"
            " '1999-12-31 23:59:59-02:30'::timestamptz"
        )
        when, nothing, old = cursor.fetchone()
        loader = cursor.cursor.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
    assert when == datetime(2026, 3, 1, 7, 0, 0, 123456, tzinfo=UTC) and when.tzinfo is UTC
    assert nothing is None
    assert old == datetime(2000, 1, 1, 2, 29, 59, tzinfo=UTC) and old.tzinfo is UTC
    if psycopg.pq.__impl__ in ("binary", "c"):
        # psycopg's own class, which it swaps for its C implementation (Django's loader is
        # a Python subclass of the pure-Python one)
        assert loader.__module__.startswith(("psycopg_binary", "psycopg_c"))


def test_a_model_s_times_round_trip(postgres_only, number):
    sent = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    message = services.message_receive(session=number, msg=inbound(timestamp=sent))
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.last_message_at == sent and conversation.last_message_at.tzinfo is UTC
    assert conversation.created_at == message.conversation.created_at


def test_postgres_urls_use_it(postgres_only):
    assert connection.settings_dict["ENGINE"] == "vbcrm.db"
    assert connection.vendor == "postgresql"


# --- prepared statements (vbcrm/db/plans.py) ---------------------------------------------


def _prepared(marker: str) -> list[str]:
    """The statements prepared on this connection whose text holds ``marker``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [s for (s,) in cursor.fetchall() if marker in s]


def _run(sql: str, times: int) -> None:
    with connection.cursor() as cursor:
        for i in range(times):
            cursor.execute(sql, [i])
            assert cursor.fetchone() == (i + 1,)


def test_a_statement_run_five_times_is_prepared(prepares):
    _run("SELECT %s::int + 1 AS vbcrm_probe_five", 5)
    assert _prepared("vbcrm_probe_five") == []
    _run("SELECT %s::int + 1 AS vbcrm_probe_five", 1)  # prepared as it runs a sixth time
    # bound by the server ($1), so one statement for every value
    assert _prepared("vbcrm_probe_five") == ["SELECT $1::int + 1 AS vbcrm_probe_five"]


def test_planned_each_time_prepares_nothing_inside(prepares):
    with planned_each_time():
        assert connection.connection.prepare_threshold is None
        _run("SELECT %s::int + 1 AS vbcrm_probe_inside", 8)
    assert _prepared("vbcrm_probe_inside") == []
    assert connection.connection.prepare_threshold == 5
    _run("SELECT %s::int + 1 AS vbcrm_probe_inside", 6)  # as any statement, after it
    assert len(_prepared("vbcrm_probe_inside")) == 1


def test_planned_each_time_puts_the_threshold_back_after_an_error(prepares):
    with pytest.raises(ZeroDivisionError), planned_each_time():
        1 / 0  # noqa: B018
    assert connection.connection.prepare_threshold == 5


def test_planned_each_time_does_nothing_elsewhere():
    # SQLite, or PostgreSQL with prepared statements off: nothing to turn off, no error
    with planned_each_time():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)


def test_a_statement_with_more_parameters_than_postgresql_binds_still_runs(postgres_only, number):
    # PostgreSQL binds at most 65,535; such a statement has them merged into its text
    services.message_receive(session=number, msg=inbound())
    ids = [*range(10**9, 10**9 + 70_000), Conversation.objects.get().pk]
    assert Conversation.objects.filter(pk__in=ids).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text || %s::text", ["a%s", "b"])  # no merging: bound
        assert cursor.fetchone() == ("a%sb",)
