"""vbcrm/db: Django's PostgreSQL backend, with timestamps read by psycopg's C loader."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from conversations import services
from conversations.models import Conversation
from tests.factories import inbound

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
