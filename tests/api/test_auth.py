from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.api.conftest import TokenClient, url
from vbcrm.models import ApiToken
from vbcrm.selectors import token_hash
from vbcrm.services import token_create, token_revoke

pytestmark = pytest.mark.django_db


def test_the_token_is_stored_only_as_its_hash(alice):
    created = token_create(user=alice, name="ci")
    row = ApiToken.objects.get()
    assert row.token_hash == token_hash(created.plain) != created.plain
    assert row.prefix == created.plain[:8]
    assert created.plain not in {row.name, row.prefix, row.token_hash}


def test_a_valid_token_authenticates_and_records_its_use(conversation, alice):
    created = token_create(user=alice, name="ci")
    response = TokenClient(created.plain).get(url("/conversations"))
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1
    created.token.refresh_from_db()
    assert created.token.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    created = token_create(user=alice, name="ci")
    client = TokenClient(created.plain)
    client.get(url("/numbers"))
    first = ApiToken.objects.get().last_used_at
    with django_assert_num_queries(2):  # the token with its user, the numbers: no UPDATE
        assert client.get(url("/numbers")).status_code == 200
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get(url("/numbers"))
    assert ApiToken.objects.get().last_used_at > first


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", "Bearer ", "Basic YWxpY2U6cHc=", "Token abc"],
    ids=["wrong", "empty", "basic", "other-scheme"],
)
def test_a_bad_authorization_header_is_a_401(alice, header):
    token_create(user=alice, name="ci")
    response = Client(HTTP_AUTHORIZATION=header).get(url("/numbers"))
    assert response.status_code == 401
    assert response.json()["error"] in {"unauthorized", "invalid_token"}
    assert "detail" in response.json()
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_a_401(alice):
    created = token_create(user=alice, name="ci")
    token_revoke(token=created.token)
    response = TokenClient(created.plain).get(url("/numbers"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_the_token_of_a_deactivated_user_is_a_401(alice):
    created = token_create(user=alice, name="ci")
    alice.is_active = False
    alice.save()
    assert TokenClient(created.plain).get(url("/numbers")).status_code == 401


def test_no_credentials_is_a_401_in_the_error_shape(client):
    response = client.get(url("/conversations"))
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "detail": "Log in or send an API token."}
    assert client.post(url("/numbers"), {"name": "x"}, "application/json").status_code == 401


def test_a_wrong_token_is_refused_even_with_a_logged_in_session(alice):
    client = Client(HTTP_AUTHORIZATION="Bearer wrong")
    client.force_login(alice)
    assert client.get(url("/numbers")).status_code == 401


def test_the_browser_session_works_for_reads(number, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.get(url("/numbers"))
    assert response.status_code == 200
    assert [n["id"] for n in response.json()] == [number.pk]


def test_the_browser_session_needs_the_csrf_token_to_write(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(url("/numbers"), {"name": "Sales"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    client.get("/")  # any page sets the csrftoken cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        url("/numbers"),
        {"name": "Sales"},
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 201


def test_a_token_needs_no_csrf_token(alice):
    client = TokenClient(token_create(user=alice, name="ci").plain, enforce_csrf_checks=True)
    response = client.post(url("/numbers"), {"name": "Sales"}, content_type="application/json")
    assert response.status_code == 201


def test_the_command_creates_a_token_and_prints_it_once(alice):
    out = StringIO()
    call_command("api_token_create", "alice", "--name", "ci", stdout=out)
    plain = out.getvalue().strip()
    assert ApiToken.objects.get().token_hash == token_hash(plain)
    assert TokenClient(plain).get(url("/numbers")).status_code == 200


def test_the_command_creates_the_user_only_when_asked(django_user_model):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("api_token_create", "robot", stdout=StringIO())
    out = StringIO()
    call_command("api_token_create", "robot", "--create-user", stdout=out)
    robot = django_user_model.objects.get(username="robot")
    assert not robot.has_usable_password()
    assert TokenClient(out.getvalue().strip()).get(url("/numbers")).status_code == 200


# --- Profile page -----------------------------------------------------------------------


def test_the_profile_page_creates_a_token_and_shows_it_once(client, alice):
    client.force_login(alice)
    assert b'href="/profile/"' in client.get("/").content
    response = client.post("/profile/", {"action": "create", "name": "<b>helpdesk</b>"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=alice)
    body = response.content.decode()
    plain = body.split("<p><code>", 1)[1].split("</code>", 1)[0]
    assert token.token_hash == token_hash(plain)
    assert "&lt;b&gt;helpdesk&lt;/b&gt;" in body and "<b>helpdesk</b>" not in body
    again = client.get("/profile/").content.decode()
    assert plain not in again
    assert f"{token.prefix}…" in again


def test_the_profile_page_revokes_only_the_users_own_tokens(client, alice, bob):
    own = token_create(user=alice, name="mine").token
    other = token_create(user=bob, name="bobs").token
    client.force_login(alice)
    response = client.post("/profile/", {"action": "revoke", "token_id": other.pk})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    response = client.post("/profile/", {"action": "revoke", "token_id": own.pk})
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.revoked_at is not None
    assert "bobs" not in client.get("/profile/").content.decode()


def test_the_profile_page_needs_a_login(client):
    assert client.get("/profile/").status_code == 302


# --- Admin ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client_(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "", "pw-root")
    client.force_login(admin)
    return client


def test_admin_creates_a_token_and_shows_it_once_in_a_message(admin_client_, alice):
    response = admin_client_.post(
        "/admin/vbcrm/apitoken/add/", {"user": alice.pk, "name": "from admin"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    secret = next(m for m in shown if "copy it now" in m).split(": ", 1)[1].split(" ")[0]
    assert token.token_hash == token_hash(secret)
    assert token.user == alice and token.name == "from admin"
    body = admin_client_.get("/admin/vbcrm/apitoken/").content.decode()
    assert token.prefix in body and secret not in body


def test_admin_revokes_tokens_with_an_action(admin_client_, alice):
    token = token_create(user=alice, name="x").token
    admin_client_.post(
        "/admin/vbcrm/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
