"""Reading whatsmeow's device store with plain SQL, without Go. Nothing here needs Django."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from whatsapp.gateway.neonize.store import device_in_store, pg_conninfo


def test_device_in_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is False
    assert not path.exists()  # the check never creates a store
    sqlite3.connect(path).close()
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is False  # no table yet
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO whatsmeow_device VALUES ('1:2@s.whatsapp.net')")
    conn.close()
    assert device_in_store(str(path), "1:2@s.whatsapp.net") is True
    assert device_in_store(str(path), "1:3@s.whatsapp.net") is False


def test_pg_conninfo_turns_lib_pq_settings_into_options() -> None:
    dsn = "postgres://wa:pw@db:5432/vbcrm?sslmode=disable&search_path=wa_12"
    assert pg_conninfo(dsn) == (
        "postgres://wa:pw@db:5432/vbcrm?sslmode=disable&options=-c+search_path%3Dwa_12"
    )
    assert pg_conninfo("postgresql://h/db?sslmode=require") == "postgresql://h/db?sslmode=require"
