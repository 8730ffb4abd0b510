"""Benchmark: the reports over the reads' data set (100k conversations, 2M messages over
90 days; ``bench.reads.generate``), given the records the services keep for them
(closes, reopenings, first replies, waiting conversations), written in bulk by the
database itself. A 30-day report, as the page and as the REST API: server time
(in-process through Django's whole stack) and query count, against a baseline:

- raw SQL: the very statements the report ran (caught from the page's request), replayed
  on a plain psycopg connection: the database's share of the work.
"""

from __future__ import annotations

import time

from bench.common import ms, pct


def generate_records(database_url: str) -> dict:
    """What the services would have recorded for the generated conversations: each one
    opened with its first message; its first reply (the first outbound, 3rd, message)
    with its author; one in 4 closed at its last message (every 8th reopened halfway
    first); the others waiting since their last (inbound) message."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            """
            WITH firsts AS (
                SELECT m.conversation_id AS id,
                       MIN(m.created_at) FILTER (WHERE m.direction = 'CLIENTE') AS first_in,
                       MIN(m.created_at) FILTER (WHERE m.direction = 'ATENDENTE') AS first_out
                  FROM whatsapp_mensagens m GROUP BY m.conversation_id)
            UPDATE whatsapp_atendimentos a
               SET created_at = f.first_in, first_inbound_at = f.first_in,
                   first_reply_at = f.first_out,
                   waiting_since = CASE WHEN a.status <> 'closed' THEN a.last_message_at END
              FROM firsts f WHERE f.id = a.id
            """
        )
        conn.execute(
            """
            INSERT INTO whatsapp_conversation_events (conversation_id, kind, actor_id,
                since, created_at)
            SELECT a.id, 'replied', a.assigned_to_id, a.first_inbound_at, a.first_reply_at
              FROM whatsapp_atendimentos a WHERE a.first_reply_at IS NOT NULL
            UNION ALL
            SELECT a.id, 'reopened', NULL, NULL,
                   a.created_at + (a.last_message_at - a.created_at) / 2
              FROM whatsapp_atendimentos a WHERE a.status = 'closed' AND a.id % 8 = 0
            UNION ALL
            SELECT a.id, 'closed', a.assigned_to_id,
                   CASE WHEN a.id % 8 = 0
                        THEN a.created_at + (a.last_message_at - a.created_at) / 2
                        ELSE a.created_at END,
                   a.last_message_at
              FROM whatsapp_atendimentos a WHERE a.status = 'closed'
            """
        )
        events = conn.execute("SELECT count(*) FROM whatsapp_conversation_events").fetchone()
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE whatsapp_atendimentos")
        conn.execute("VACUUM ANALYZE whatsapp_conversation_events")
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "events": events[0] if events else 0,
    }


def _time(fn, repeat: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def measure(database_url: str, reader, repeat: int) -> list[dict]:
    import psycopg
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.urls import reverse

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(reader)
    reports = {
        "report page, 30 days": reverse("reports:page") + "?range=30",
        "report API, 30 days": "/api/whatsapp/reports?range=30",
    }

    def request(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        close_old_connections()  # as a served request ends (see bench.reads)

    def caught(url: str) -> list[tuple[str, tuple]]:
        queries: list[tuple[str, tuple]] = []

        def catch(execute, sql, params, many, context):
            queries.append((sql, tuple(params or ())))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(catch):
            request(url)
        return queries

    rows = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        for name, url in reports.items():
            queries = caught(url)
            # The report's own statements: the figures, not the session and user lookups.
            figures = [
                (sql, params)
                for sql, params in queries
                if "whatsapp_mensagens" in sql
                or "whatsapp_conversation_events" in sql
                or "whatsapp_atendimentos" in sql
            ]
            ours = _time(lambda url=url: request(url), repeat)

            def raw(statements=figures):
                for sql, params in statements:
                    conn.execute(sql, params).fetchall()

            base = _time(raw, repeat)
            rows.append(
                {
                    "read": name,
                    "queries": len(queries),
                    "p50_ms": ms(pct(ours, 50)),
                    "p95_ms": ms(pct(ours, 95)),
                    "raw_queries": len(figures),
                    "raw_p50_ms": ms(pct(base, 50)),
                    "raw_p95_ms": ms(pct(base, 95)),
                }
            )
    return rows
