"""Login throttling: every door that checks a password locks by account and by address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import AsyncClient, Client

from tests.test_settings import settings_with

pytestmark = pytest.mark.django_db

LIMIT = 5  # the default VBCRM_LOGIN_FAILURE_LIMIT
HERE = "10.0.0.1"
THERE = "10.0.0.2"


def client_at(address: str, **extra: str) -> Client:
    return Client(REMOTE_ADDR=address, **extra)


def login(client: Client, username: str, password: str, path: str = "/login/"):
    return client.post(path, {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(client: Client, username: str, times: int, path: str = "/login/"):
    response = None
    for _ in range(times):
        response = login(client, username, "wrong-password", path)
    return response


def test_the_login_page_locks_an_account_after_the_limit_and_refuses_the_right_password(alice):
    client = client_at(HERE)
    response = fail(client, "alice", LIMIT - 1)
    assert response.status_code == 200
    assert b"didn't match" in response.content
    response = fail(client, "alice", 1)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert b"Too many failed login attempts. Try again in 15 minutes." in response.content
    assert b'name="password"' in response.content  # still the login page
    response = login(client, "alice", "pw-alice")
    assert response.status_code == 429
    assert b"Try again in 15 minutes." in response.content
    assert not logged_in(client)


def test_the_lockout_message_is_translated(alice, settings):
    settings.LANGUAGE_CODE = "pt-br"
    response = fail(client_at(HERE), "alice", LIMIT)
    assert response.status_code == 429
    assert "Muitas tentativas de login sem sucesso. Tente de novo em 15 minutos." in (
        response.content.decode()
    )


def test_the_lockout_time_and_limit_come_from_settings(alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    client = client_at(HERE)
    assert fail(client, "alice", 1).status_code == 200
    response = fail(client, "alice", 1)
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert b"Try again in 1 minute." in response.content


def test_without_a_lockout_time_only_an_admin_unlocks(alice, settings):
    settings.AXES_COOLOFF_TIME = None
    response = fail(client_at(HERE), "alice", LIMIT)
    assert response.status_code == 429
    assert "Retry-After" not in response
    assert b"ask an admin to unlock it" in response.content


def test_the_admin_login_is_locked_too(django_user_model):
    django_user_model.objects.create_superuser("root", password="pw-root")
    client = client_at(HERE)
    response = fail(client, "root", LIMIT, "/admin/login/")
    assert response.status_code == 429
    assert b"Try again in 15 minutes." in response.content
    assert b'id="login-form"' in response.content  # the admin's own login page
    response = login(client, "root", "pw-root", "/admin/login/?next=/admin/")
    assert response.status_code == 429
    assert not logged_in(client)
    # one lock for both doors: the site's login refuses the account as well
    assert login(client_at(THERE), "root", "pw-root").status_code == 429


def test_failures_on_one_door_count_on_the_other(alice):
    client = client_at(HERE)
    fail(client, "alice", LIMIT - 1, "/admin/login/")
    assert fail(client, "alice", 1).status_code == 429


def test_guessing_the_current_password_on_the_password_page_locks_the_account(alice):
    client = client_at(HERE)
    client.force_login(alice)
    form = {"new_password1": "Nov4-Senha-Forte", "new_password2": "Nov4-Senha-Forte"}
    for _ in range(LIMIT - 1):
        response = client.post("/password/", {**form, "old_password": "guess"})
        assert response.status_code == 200
    response = client.post("/password/", {**form, "old_password": "guess"})
    assert response.status_code == 429
    assert b"Try again in 15 minutes." in response.content
    response = client.post("/password/", {**form, "old_password": "pw-alice"})
    assert response.status_code == 429
    alice.refresh_from_db()
    assert alice.check_password("pw-alice")
    assert login(client_at(THERE), "alice", "pw-alice").status_code == 429


def test_an_account_is_locked_from_every_address_and_an_address_for_every_account(alice, bob):
    fail(client_at(HERE), "alice", LIMIT)
    assert login(client_at(THERE), "alice", "pw-alice").status_code == 429
    # the address that guessed is locked for any account
    assert login(client_at(HERE), "bob", "pw-bob").status_code == 429


def test_another_account_from_another_address_is_not_locked(alice, bob):
    fail(client_at(HERE), "alice", LIMIT)
    client = client_at(THERE)
    response = login(client, "bob", "pw-bob")
    assert response.status_code == 302
    assert logged_in(client)


def test_an_address_that_tries_many_accounts_is_locked(bob):
    client = client_at(HERE)
    for name in ("ana", "bia", "caio", "davi"):
        assert fail(client, name, 1).status_code == 200
    assert fail(client, "eva", 1).status_code == 429
    assert login(client, "bob", "pw-bob").status_code == 429
    assert login(client_at(THERE), "bob", "pw-bob").status_code == 302


def test_a_success_before_the_limit_logs_in(alice):
    client = client_at(HERE)
    fail(client, "alice", LIMIT - 1)
    assert login(client, "alice", "pw-alice").status_code == 302
    assert logged_in(client)


def test_an_admin_unlocks_an_account_with_the_command(alice):
    fail(client_at(HERE), "alice", LIMIT)
    assert login(client_at(THERE), "alice", "pw-alice").status_code == 429
    call_command("axes_reset_username", "alice")
    assert login(client_at(THERE), "alice", "pw-alice").status_code == 302


def test_an_admin_unlocks_an_address_with_the_command(bob):
    client = client_at(HERE)
    for name in ("ana", "bia", "caio", "davi", "eva"):
        fail(client, name, 1)
    assert login(client, "bob", "pw-bob").status_code == 429
    call_command("axes_reset_ip", HERE)
    assert login(client, "bob", "pw-bob").status_code == 302


def test_an_admin_unlocks_from_django_admin(alice, django_user_model):
    fail(client_at(HERE), "alice", LIMIT)
    root = django_user_model.objects.create_superuser("root", password="pw-root")
    admin = client_at("10.9.9.9")
    admin.force_login(root)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert b"alice" in listing.content
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert login(client_at(HERE), "alice", "pw-alice").status_code == 302


def test_a_forwarded_address_is_ignored_without_a_trusted_proxy(alice, bob):
    fail(client_at(HERE, HTTP_X_FORWARDED_FOR="192.0.2.1"), "alice", LIMIT)
    # a client cannot step out of its address's lock by writing the header
    spoofed = client_at(HERE, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert login(spoofed, "bob", "pw-bob").status_code == 429


def test_behind_a_trusted_proxy_each_client_is_its_forwarded_address(alice, bob, settings):
    settings.VBCRM_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.254"
    fail(client_at(proxy, HTTP_X_FORWARDED_FOR="192.0.2.1"), "alice", LIMIT)
    # another client behind the same proxy is not locked by the first one's guesses
    assert (
        login(client_at(proxy, HTTP_X_FORWARDED_FOR="192.0.2.2"), "bob", "pw-bob").status_code
        == 302
    )
    # what a client writes to the left of the proxy's entry does not move it
    spoofed = client_at(proxy, HTTP_X_FORWARDED_FOR="192.0.2.77, 192.0.2.1")
    assert login(spoofed, "bob", "pw-bob").status_code == 429
    assert AccessAttempt.objects.get(username="alice").ip_address == "192.0.2.1"


def test_throttle_settings_come_from_the_environment(tmp_path):
    keys = ["AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME", "VBCRM_TRUSTED_PROXY_COUNT", "AXES_ENABLED"]
    defaults = settings_with(tmp_path, keys)
    assert defaults == {
        "AXES_FAILURE_LIMIT": "5",
        "AXES_COOLOFF_TIME": "0:15:00",
        "VBCRM_TRUSTED_PROXY_COUNT": "0",
        "AXES_ENABLED": "True",
    }
    s = settings_with(
        tmp_path,
        keys,
        VBCRM_LOGIN_FAILURE_LIMIT="10",
        VBCRM_LOGIN_LOCKOUT_MINUTES="0",
        VBCRM_TRUSTED_PROXY_COUNT="2",
    )
    assert s["AXES_FAILURE_LIMIT"] == "10"
    assert s["AXES_COOLOFF_TIME"] == "None"
    assert s["VBCRM_TRUSTED_PROXY_COUNT"] == "2"


@pytest.mark.django_db(transaction=True)
async def test_served_over_asgi_the_locked_page_says_so(alice):
    """daphne serves through Django's ASGI handler: the lockout answer is the same there."""
    client = AsyncClient(REMOTE_ADDR=HERE)
    for _ in range(LIMIT):
        response = await client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 429
    assert b"Try again in 15 minutes." in response.content
    response = await client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 429
    assert b'name="password"' in response.content
    assert response["Retry-After"] == "900"


def test_the_deploy_check_warns_behind_a_proxy_without_a_proxy_count(settings):
    from vbcrm.checks import check_client_address_behind_proxy

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.VBCRM_TRUSTED_PROXY_COUNT = 0
    assert [w.id for w in check_client_address_behind_proxy(None)] == ["vbcrm.W002"]
    settings.VBCRM_TRUSTED_PROXY_COUNT = 1
    assert check_client_address_behind_proxy(None) == []
