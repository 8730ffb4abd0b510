"""Settings come from the environment (each case runs in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({k: str(getattr(settings, k, None)) for k in %r}))"
)
CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("DJANGO_", "VBCRM_", "WHATSAPP_"))
    and k not in {"DATABASE_URL", "REDIS_URL"}
}


def settings_with(tmp_path, keys: list[str], **env: str) -> dict:
    full = {
        **CLEAN,
        "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
        "VBCRM_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_READ_DOT_ENV_FILE": "0",
        **env,
    }
    out = subprocess.run(
        [sys.executable, "-c", PRINT % keys], cwd=ROOT, env=full, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_embedded_defaults(tmp_path):
    s = settings_with(
        tmp_path,
        [
            "DEBUG",
            "TIME_ZONE",
            "LANGUAGE_CODE",
            "VBCRM_MAX_NUMBERS_PER_OWNER",
            "CHANNEL_LAYERS",
            "DATABASES",
        ],
    )
    assert s["DEBUG"] == "False"
    assert s["TIME_ZONE"] == "America/Sao_Paulo"
    assert s["LANGUAGE_CODE"] == "pt-br"
    assert s["VBCRM_MAX_NUMBERS_PER_OWNER"] == "5"
    assert "InMemoryChannelLayer" in s["CHANNEL_LAYERS"]
    assert "sqlite3" in s["DATABASES"] and str(tmp_path / "data" / "db.sqlite3") in s["DATABASES"]


def test_the_embedded_secret_is_generated_once_and_kept(tmp_path):
    first = settings_with(tmp_path, ["SECRET_KEY"])["SECRET_KEY"]
    second = settings_with(tmp_path, ["SECRET_KEY"])["SECRET_KEY"]
    assert first == second and len(first) >= 50
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0


def test_values_from_the_environment(tmp_path):
    s = settings_with(
        tmp_path,
        [
            "DEBUG",
            "TIME_ZONE",
            "LANGUAGE_CODE",
            "VBCRM_MAX_NUMBERS_PER_OWNER",
            "ALLOWED_HOSTS",
            "DATABASES",
            "CHANNEL_LAYERS",
            "SECRET_KEY",
            "MEDIA_ROOT",
            "SECURE_SSL_REDIRECT",
        ],
        DJANGO_DEBUG="1",
        TIME_ZONE="UTC",
        LANGUAGE_CODE="en",
        VBCRM_MAX_NUMBERS_PER_OWNER="3",
        DJANGO_ALLOWED_HOSTS="crm.example.com,.example.org",
        DATABASE_URL="postgres://u:p@db.example.com:5432/crm",
        REDIS_URL="redis://cache.example.com:6379/1",
        DJANGO_SECRET_KEY="k" * 60,
        VBCRM_MEDIA_ROOT=str(tmp_path / "files"),
        DJANGO_SECURE_SSL_REDIRECT="true",
    )
    assert s["DEBUG"] == "True"
    assert s["TIME_ZONE"] == "UTC"
    assert s["LANGUAGE_CODE"] == "en"
    assert s["VBCRM_MAX_NUMBERS_PER_OWNER"] == "3"
    assert s["ALLOWED_HOSTS"] == str(["crm.example.com", ".example.org"])
    assert "vbcrm.db" in s["DATABASES"] and "db.example.com" in s["DATABASES"]
    assert "channels_redis" in s["CHANNEL_LAYERS"] and "cache.example.com" in s["CHANNEL_LAYERS"]
    # live events on pub/sub, kept apart from other databases' on the same server
    assert "RedisPubSubChannelLayer" in s["CHANNEL_LAYERS"] and "vbcrm-db1:" in s["CHANNEL_LAYERS"]
    assert s["SECRET_KEY"] == "k" * 60
    assert s["MEDIA_ROOT"] == str(tmp_path / "files")
    assert s["SECURE_SSL_REDIRECT"] == "True"


POSTGRES = {"DATABASE_URL": "postgres://u:p@db.example.com:5432/crm", "DJANGO_SECRET_KEY": "k" * 60}
POOL_PRINT = (
    "import django, json; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'pool': db['OPTIONS'].get('pool'), 'age': db['CONN_MAX_AGE']}))"
)


BINDING_PRINT = (
    "import django, json; from django.conf import settings; django.setup(); "
    "o = settings.DATABASES['default'].get('OPTIONS', {}); "
    "print(json.dumps([o.get('server_side_binding'), o.get('prepare_threshold')]))"
)


def pool_settings(tmp_path, script: str = POOL_PRINT, **env: str) -> subprocess.CompletedProcess:
    full = {
        **CLEAN,
        "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
        "VBCRM_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_READ_DOT_ENV_FILE": "0",
        **POSTGRES,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=full, capture_output=True, text=True
    )


def test_postgres_connections_come_from_a_pool_by_default(tmp_path):
    out = pool_settings(tmp_path)
    assert out.returncode == 0, out.stderr
    # Connections still end with each request (CONN_MAX_AGE=0): they go back to the pool.
    assert json.loads(out.stdout) == {"pool": {"min_size": 2, "max_size": 20}, "age": 0}


def test_the_pool_sizes_come_from_the_environment(tmp_path):
    out = pool_settings(tmp_path, DATABASE_POOL_MIN_SIZE="0", DATABASE_POOL_MAX_SIZE="5")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pool"] == {"min_size": 0, "max_size": 5}


def test_a_pool_of_size_zero_means_no_pool(tmp_path):
    out = pool_settings(tmp_path, DATABASE_POOL_MAX_SIZE="0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"pool": None, "age": 0}


def test_a_pool_smaller_than_its_minimum_is_refused(tmp_path):
    out = pool_settings(tmp_path, DATABASE_POOL_MIN_SIZE="8", DATABASE_POOL_MAX_SIZE="4")
    assert out.returncode != 0
    assert "DATABASE_POOL_MIN_SIZE must be between 0 and DATABASE_POOL_MAX_SIZE" in out.stderr


def test_postgres_statements_are_bound_by_the_server_and_prepared_by_default(tmp_path):
    out = pool_settings(tmp_path, BINDING_PRINT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, 5]


def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler(tmp_path):
    out = pool_settings(tmp_path, BINDING_PRINT, DATABASE_PREPARED_STATEMENTS="0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [None, None]  # Django's defaults: client-side, none


SQLITE_PRINT = (
    "import django, json; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']), "
    "'options': db.get('OPTIONS', {}), 'embedded': settings.EMBEDDED}))"
)


def test_a_sqlite_url_gets_the_embedded_options_and_no_pool(tmp_path):
    env = {
        **CLEAN,
        "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
        "VBCRM_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path}/crm.sqlite3",
        "DATABASE_POOL_MAX_SIZE": "10",
    }
    out = subprocess.run(
        [sys.executable, "-c", SQLITE_PRINT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    db = json.loads(out.stdout)
    assert db["engine"] == "django.db.backends.sqlite3"
    assert db["name"] == str(tmp_path / "crm.sqlite3")
    assert "pool" not in db["options"]
    assert db["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["options"]["init_command"]
    # one machine, like the default: the secret key is generated, the worker embedded
    assert db["embedded"] is True


@pytest.mark.timeout(120)
def test_commands_run_on_a_sqlite_url(tmp_path):
    import sqlite3

    path = tmp_path / "crm.sqlite3"
    env = {
        **CLEAN,
        "VBCRM_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DATABASE_URL": f"sqlite:///{path}",
        "DJANGO_SECRET_KEY": "k" * 60,
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM whatsapp_sessions").fetchone() == (0,)


def test_a_deployment_without_a_secret_key_refuses_to_start(tmp_path):
    env = {
        **CLEAN,
        "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DATABASE_URL": "postgres://u@localhost/x",
    }
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in out.stderr


def test_a_bad_boolean_is_an_error_not_a_guess(tmp_path):
    env = {
        **CLEAN,
        "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "VBCRM_DATA_DIR": str(tmp_path),
        "VBCRM_MAX_NUMBERS_PER_OWNER": "five",
    }
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0


@pytest.mark.timeout(120)
def test_check_deploy_passes_with_production_settings(tmp_path):
    env = {
        **CLEAN,
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "VBCRM_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "x9!" + "Qz7#kP2$" * 8,
        "DJANGO_ALLOWED_HOSTS": "crm.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "1",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "DJANGO_SECURE_HSTS_PRELOAD": "1",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
