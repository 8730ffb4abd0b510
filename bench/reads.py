"""Benchmark 3, reads: with 100k conversations and 2M messages (generated in bulk by the
database itself), the inbox list page, a thread page and the two API reads: server
time (in-process through Django's whole stack) and query count, against two baselines:

- raw SQL: the statements that fetch the same rows, on a plain psycopg connection;
- the Django floor: the same statements run by a minimal view (``bench/readfloor.py``)
  behind the same middleware and login check, answering the rows as JSON; what any
  Django view pays before it does its own work;
- the page's own floor: the statements our view ran (captured from it, but for the
  middleware's and login's), replayed by that minimal view and answered as JSON: what
  the view costs over the SQL it needs (the ORM's Python, the templates).
"""

from __future__ import annotations

import time

from bench.common import ms, pct

NUMBERS = 20


def generate(database_url: str, reader, conversations: int, messages: int) -> dict:
    """Contacts, conversations and messages for ``NUMBERS`` numbers that ``reader``
    sees (owner of half, agent of the rest), in INSERT ... SELECT statements."""
    import psycopg

    from bench import search
    from whatsapp import services

    others = _others(reader)
    sessions = []
    for i in range(NUMBERS):
        owner = reader if i % 2 == 0 else others
        row = services.session_create(owner=owner, name=f"Reads {i}")
        if owner is not reader:
            services.session_agent_add(session=row, user=reader)
        sessions.append(row.pk)
    per_conv = max(1, messages // conversations)
    start = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            """
            INSERT INTO whatsapp_contacts (session_id, jid, lid, phone, push_name, saved_name,
                                           notes, is_group, created_at, updated_at,
                                           group_subject, group_picture, group_picture_id,
                                           no_auto_messages)
            SELECT (%(sessions)s::bigint[])[1 + g %% %(n)s],
                   '5541' || lpad(g::text, 9, '0') || '@s.whatsapp.net', '',
                   '5541' || lpad(g::text, 9, '0'), 'Contact ' || g, '', '', false, now(), now(),
                   '', '', '', false
              FROM generate_series(1, %(conversations)s) g
            """,
            {"sessions": sessions, "n": NUMBERS, "conversations": conversations},
        )
        # last_message_at spread over 90 days; 1 in 10 unread, 1 in 4 closed, some assigned.
        conn.execute(
            """
            INSERT INTO whatsapp_atendimentos (session_id, contact_id, status, assigned_to_id,
                unread_count, last_message_at, last_message_preview, created_at, updated_at,
                menu_attempts)
            SELECT c.session_id, c.id,
                   CASE WHEN c.id %% 4 = 0 THEN 'closed' WHEN c.id %% 7 = 0 THEN 'pending'
                        ELSE 'open' END,
                   CASE WHEN c.id %% 5 = 0 THEN %(reader)s END,
                   CASE WHEN c.id %% 10 = 0 THEN 1 + c.id %% 9 ELSE 0 END,
                   now() - make_interval(secs => (c.id * 7919 %% 7776000)),
                   'Last message of contact ' || c.id, now(), now(), 0
              FROM whatsapp_contacts c
             WHERE c.session_id = ANY(%(sessions)s)
            """,
            {"reader": reader.pk, "sessions": sessions},
        )
        # Messages stored in the order they were said, as a live system stores them:
        # ids and the table's pages follow time, and one conversation's messages are
        # scattered among the others' of the same hours.
        conn.execute(
            f"""
            INSERT INTO whatsapp_mensagens (conversation_id, wa_id, direction, kind, body,
                sender_jid, sender_name, media, media_status, mime_type, file_name,
                location_name, status, error, wa_timestamp, created_at, updated_at,
                quoted_wa_id, attempts, in_flight, receipt_pending, client_key, read_at,
                automatic, auto_reason, media_link)
            SELECT a.id, 'GEN' || a.id || '-' || r,
                   CASE WHEN r %% 3 = 0 THEN 'ATENDENTE' ELSE 'CLIENTE' END, 'text',
                   'Message ' || r || ' of conversation ' || a.id
                       || ': hello, I would like to know about my order, thanks! '
                       || {search.words_sql()},
                   '', '', '', '', '', '', '',
                   CASE WHEN r %% 3 = 0 THEN 'read' ELSE 'received' END, '',
                   a.last_message_at - make_interval(mins => %(per)s - r),
                   a.last_message_at - make_interval(mins => %(per)s - r), now(),
                   '', 0, false, false, '', NULL, false, '', ''
              FROM generate_series(1, %(per)s) r
             CROSS JOIN whatsapp_atendimentos a
             WHERE a.session_id = ANY(%(sessions)s)
             ORDER BY a.last_message_at - make_interval(mins => %(per)s - r), a.id
            """,
            {"per": per_conv, "sessions": sessions, "words": list(search.WORDS)},
        )
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"seconds": round(time.perf_counter() - start, 1), "per_conversation": per_conv}


def _others(reader):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    other, _ = User.objects.get_or_create(username="reads-owner")
    return other


# --- the raw baseline --------------------------------------------------------------------

_VISIBLE = """
SELECT id FROM whatsapp_sessions WHERE owner_id = %(user)s
UNION SELECT session_id FROM whatsapp_session_agents WHERE user_id = %(user)s
"""
RAW_LIST = f"""
SELECT a.*, c.*, s.*, u.*
  FROM whatsapp_atendimentos a
  JOIN whatsapp_contacts c ON c.id = a.contact_id
  JOIN whatsapp_sessions s ON s.id = a.session_id
  LEFT JOIN auth_user u ON u.id = a.assigned_to_id
 WHERE a.session_id IN ({_VISIBLE})
 ORDER BY a.last_message_at DESC, a.id DESC
 LIMIT 51
"""
RAW_CONVERSATION = f"""
SELECT a.*, c.*, s.* FROM whatsapp_atendimentos a
  JOIN whatsapp_contacts c ON c.id = a.contact_id
  JOIN whatsapp_sessions s ON s.id = a.session_id
 WHERE a.id = %(conv)s AND a.session_id IN ({_VISIBLE})
"""
RAW_MESSAGES = """
SELECT m.* FROM whatsapp_mensagens m
 WHERE m.conversation_id = %(conv)s ORDER BY m.id DESC LIMIT 51
"""
# Each read's statements, by the slug the Django floor's URL takes.
RAW_SQL = {
    "inbox": [RAW_LIST],
    "thread": [RAW_LIST, RAW_CONVERSATION, RAW_MESSAGES],
    "api-conversations": [RAW_LIST],
    "api-messages": [RAW_CONVERSATION, RAW_MESSAGES],
}


def _time(fn, repeat: int) -> list[float]:
    for _ in range(3):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def measure(
    database_url: str, reader, repeat: int, only: str | None = None, profiler=None
) -> list[dict]:
    """Each read's timings against its baselines. ``only``: that read alone;
    ``profiler`` (a ``cProfile.Profile``): profile our view's timed requests, and skip
    the baselines."""
    import psycopg
    from django.db import close_old_connections, connection
    from django.test import Client, override_settings
    from django.urls import reverse

    from bench import readfloor
    from conversations import selectors

    top = selectors.conversation_list(user=reader, limit=1)[0]
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(reader)
    reads = {
        "inbox list page": ("inbox", reverse("inbox")),
        "thread page": ("thread", reverse("conversations:detail", args=[top.pk])),
        "API conversations": ("api-conversations", "/api/whatsapp/conversations"),
        "API messages": ("api-messages", f"/api/whatsapp/conversations/{top.pk}/messages"),
    }
    params = {"user": reader.pk, "conv": top.pk}

    def request(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        # The test Client keeps the connection from one request to the next; a served
        # request hands it back at its end (request_finished), so this does too:
        # with CONN_MAX_AGE=0 it is closed, or returned to the pool.
        close_old_connections()

    def captured(url: str) -> list[tuple[str, object]]:
        queries: list[tuple[str, object]] = []

        def capture(execute, sql, params, many, context):
            queries.append((sql, params))
            return execute(sql, params, many, context)

        # a wrapper, not CaptureQueriesContext: the connection ends with the request
        with connection.execute_wrapper(capture):
            request(url)
        return queries

    rows = []
    # psycopg prepares a statement it has run 5 times, so the raw baseline skips planning;
    # Django turns that off (for external poolers), so the floor and our views plan each.
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        override_settings(ROOT_URLCONF="bench.readfloor"),
    ):
        for name, (slug, url) in reads.items():
            if only is not None and name != only:
                continue
            if profiler is not None:
                profiler.runcall(_time, lambda url=url: request(url), repeat)
                continue
            floor_url = f"{reverse('bench_floor', args=[slug])}?conv={top.pk}"
            statements = captured(url)
            queries, floor_queries = len(statements), len(captured(floor_url))
            # The page's own floor: the statements the view ran, but for those the
            # floor's middleware and login run too (the first ones), replayed as they ran.
            readfloor.PAGE_STATEMENTS[slug] = statements[floor_queries - len(RAW_SQL[slug]) :]
            page_floor_url = reverse("bench_page_floor", args=[slug])
            page_floor_queries = len(captured(page_floor_url))
            ours = _time(lambda url=url: request(url), repeat)
            floor = _time(lambda url=floor_url: request(url), repeat)
            page_floor = _time(lambda url=page_floor_url: request(url), repeat)

            def raw(statements=RAW_SQL[slug]):
                for sql in statements:
                    conn.execute(sql, params).fetchall()

            base = _time(raw, repeat)
            rows.append(
                {
                    "read": name,
                    "queries": queries,
                    "p50_ms": ms(pct(ours, 50)),
                    "p95_ms": ms(pct(ours, 95)),
                    "floor_queries": floor_queries,
                    "floor_p50_ms": ms(pct(floor, 50)),
                    "floor_p95_ms": ms(pct(floor, 95)),
                    "page_floor_queries": page_floor_queries,
                    "page_floor_p50_ms": ms(pct(page_floor, 50)),
                    "page_floor_p95_ms": ms(pct(page_floor, 95)),
                    "raw_queries": len(RAW_SQL[slug]),
                    "raw_p50_ms": ms(pct(base, 50)),
                    "raw_p95_ms": ms(pct(base, 95)),
                }
            )
    return rows
