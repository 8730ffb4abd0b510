"""Django's PostgreSQL backend, with timestamps read by psycopg's C loader.

Django 5.2 gives each cursor its own loader for ``timestamptz``: a Python subclass of
psycopg's pure-Python loader (to set the time zone it wants on every value), so even
with ``psycopg[binary]`` every timestamp a query returns is parsed in Python, some
5 µs each (Django ticket #36960; psycopg's C loader cannot be subclassed). A list of 50
conversations brings back 650 of them. When the connection's time zone is UTC (always,
with ``USE_TZ`` and no ``TIME_ZONE`` for the database, as here), psycopg's own loader
returns the very same values, aware datetimes in ``datetime.UTC``, and this
backend lets it: psycopg puts its C implementation in place of the Python class.

``settings.py`` uses it for ``postgres://`` URLs; everything else is Django's.
"""

from __future__ import annotations

from datetime import UTC

from django.db.backends.postgresql import base
from psycopg.types.datetime import TimestamptzLoader


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if self.timezone is UTC and cursor.connection.info.timezone is UTC:
            cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        return cursor
