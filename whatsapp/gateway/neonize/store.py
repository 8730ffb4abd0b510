"""whatsmeow's device store, read with plain SQL (SQLite or PostgreSQL), never through Go."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class StoreUnavailable(Exception):
    """The device store could not be read (worth retrying)."""


# libpq's URI parameters. lib/pq (the Go driver) passes any other parameter as a
# server run-time setting (``search_path=wa``); libpq rejects those, so they are
# turned into ``options=-c name=value`` for psycopg.
_LIBPQ_PARAMS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    }
)


def pg_conninfo(dsn: str) -> str:
    """A lib/pq URL (as whatsmeow gets it) as a libpq URL psycopg accepts."""
    parts = urlsplit(dsn)
    kept: list[tuple[str, str]] = []
    settings: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _LIBPQ_PARAMS:
            kept.append((key, value))
        else:
            escaped = value.replace("\\", "\\\\").replace(" ", "\\ ")
            settings.append(f"-c {key}={escaped}")
    if settings:
        options = [v for k, v in kept if k == "options"]
        kept = [(k, v) for k, v in kept if k != "options"]
        kept.append(("options", " ".join(options + settings)))
    return urlunsplit(parts._replace(query=urlencode(kept)))


def device_in_store(store: str, device_jid: str) -> bool:
    """Whether whatsmeow's ``whatsmeow_device`` table holds ``device_jid``.

    Checked with plain SQL because handing whatsmeow a JID it cannot find makes
    the Go core dereference nil and abort the process. A missing file or table
    means "not there"; a store that cannot be reached raises StoreUnavailable.
    """
    if store.startswith("postgres"):
        return _device_in_postgres(store, device_jid)
    path = Path(store)
    if not path.exists():
        return False
    try:
        # Read-only, so the check never creates or migrates anything.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise StoreUnavailable(str(exc)) from exc
    try:
        row = conn.execute("SELECT 1 FROM whatsmeow_device WHERE jid = ?", (device_jid,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise StoreUnavailable(str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(str(exc)) from exc
    finally:
        conn.close()
    return row is not None


def _device_in_postgres(store: str, device_jid: str) -> bool:
    import psycopg  # only the PostgreSQL store needs it

    try:
        with psycopg.connect(pg_conninfo(store), connect_timeout=10, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM whatsmeow_device WHERE jid = %s", (device_jid,)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return False
    except psycopg.Error as exc:
        raise StoreUnavailable(str(exc)) from exc
    return row is not None
