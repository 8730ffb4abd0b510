"""Django's PostgreSQL backend, with timestamps read by psycopg's C loader.

Django 5.2 gives each cursor its own loader for ``timestamptz``: a Python subclass of
psycopg's pure-Python loader (to set the time zone it wants on every value), so even
with ``psycopg[binary]`` every timestamp a query returns is parsed in Python, some
5 µs each (Django ticket #36960; psycopg's C loader cannot be subclassed). A list of 50
conversations brings back 650 of them. When the connection's time zone is UTC (always,
with ``USE_TZ`` and no ``TIME_ZONE`` for the database, as here), psycopg's own loader
returns the very same values, aware datetimes in ``datetime.UTC``, and this
backend lets it: psycopg puts its C implementation in place of the Python class.

With ``server_side_binding`` (prepared statements, ``vbcrm/db/plans.py``), a statement
with more parameters than PostgreSQL binds has them merged client-side instead.

``settings.py`` uses it for ``postgres://`` URLs; everything else is Django's.
"""

from __future__ import annotations

from datetime import UTC

from django.db.backends.postgresql import base
from psycopg import ClientCursor, Cursor
from psycopg.types.datetime import TimestamptzLoader

# The most parameters PostgreSQL takes with a statement it binds itself.
MAX_PARAMETERS = 65_535


class ServerBindingCursor(base.CursorMixin, Cursor):
    """Django's cursor for ``server_side_binding`` (``settings.py``; the bases of
    ``base.ServerBindingCursor``), but a statement with more parameters than PostgreSQL
    binds (an ``IN`` of a long list: the contacts of a large import, say) has them
    merged into its text here, as Django's default cursor does for every statement,
    instead of failing."""

    def execute(self, query, params=None, **kwargs):
        if params is not None and len(params) > MAX_PARAMETERS:
            query, params = ClientCursor(self.connection).mogrify(query, params), None
        return super().execute(query, params, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = ServerBindingCursor
        return params

    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if self.timezone is UTC and cursor.connection.info.timezone is UTC:
            cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        return cursor
