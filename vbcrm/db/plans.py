"""Prepared statements, and the reads that must not use them.

On PostgreSQL the parameters are bound by the server and psycopg prepares a statement
once it has run five times on a connection (``settings.py``: ``server_side_binding``,
``prepare_threshold``; ``DATABASE_PREPARED_STATEMENTS=0`` turns both off, for a pooler
in transaction mode). A page's short statements then skip PostgreSQL's planning, which
is often longer than running them (a conversation by id with its contact, number and
agent: about 1 ms to plan, 0.1 ms to run). After five runs PostgreSQL may also keep a
generic plan, made without the values; for a statement whose best plan depends on them
(how many messages hold a word, which stretch of ids to read) that plan can be slower
than planning afresh, and the run costs far more than the planning. Such reads run in
``planned_each_time()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


@contextmanager
def planned_each_time(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside, statements on ``using`` are not prepared: PostgreSQL plans each for the
    values it is given (psycopg's ``prepare_threshold`` of the connection, put back
    after). Nothing changes on other databases or with prepared statements off."""
    db = connections[using]
    if db.vendor != "postgresql":
        yield
        return
    db.ensure_connection()
    raw = db.connection
    saved = raw.prepare_threshold  # None with prepared statements off: left as it is
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = saved
