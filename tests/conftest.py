"""Shared fixtures: alice owns a number, bob is its agent, charlie is an outsider."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection

from conversations import ratelimit
from conversations import services as conversation_services
from conversations.services.push import push_subscriptions_changed
from conversations.services.routing import _has_queues
from conversations.services.webhooks import webhook_endpoints_changed
from tests.factories import inbound
from whatsapp import services as whatsapp_services


@pytest.fixture(autouse=True)
def _test_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Tests don't run collectstatic: use the plain storage (no manifest needed).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counters such as the send rate are keyed by user id, and ids repeat across tests.
    cache.clear()
    session_queues_changed_all()
    # Assertions read the English source strings; the pt-BR default has tests of its own.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _send_rate_clock(monkeypatch):
    """The send rate counts per clock minute: a test that crossed a minute boundary would
    see its counter start over. Pin the rate's clock to the start of the current minute."""
    pinned = (time.time() // 60) * 60 + 1
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: pinned))


def session_queues_changed_all() -> None:
    """The menu bot remembers which numbers have queues, webhooks which have endpoints,
    push whether any browser subscribed; ids repeat across tests."""
    _has_queues.clear()
    webhook_endpoints_changed()
    push_subscriptions_changed()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_connections(django_db_setup, django_db_blocker):
    """Worker threads and subprocesses of the end-to-end tests open their own database
    connections; end any still open so the test database can be dropped afterwards."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")


@pytest.fixture
def prepares(postgres_only):
    """PostgreSQL with prepared statements on (vbcrm/db/plans.py), as by default."""
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        pytest.skip("prepared statements are off here (DATABASE_PREPARED_STATEMENTS=0)")


def _user(django_user_model, username: str):
    return django_user_model.objects.create_user(username=username, password="pw-" + username)


@pytest.fixture
def alice(django_user_model):
    return _user(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model):
    return _user(django_user_model, "bob")


@pytest.fixture
def charlie(django_user_model):
    return _user(django_user_model, "charlie")


@pytest.fixture
def number(alice, bob):
    """A number owned by alice with bob as its agent."""
    session = whatsapp_services.session_create(owner=alice, name="Support")
    whatsapp_services.session_agent_add(session=session, user=bob)
    return session


@pytest.fixture
def conversation(number):
    """A conversation on ``number`` that a customer opened by writing "first"."""
    return conversation_services.message_receive(
        session=number, msg=inbound(text="first")
    ).conversation


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own (started), to stop and start at will."""
    from tests.redis_server import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()
