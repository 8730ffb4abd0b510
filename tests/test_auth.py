"""vbcrm.auth: the login backend reads a request's user with their presence, checks a
wrong password once, and the sessions Django's own backend opened stay open."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.test import Client

from conversations import services
from conversations.models import AgentPresence
from vbcrm.auth import UserBackend

pytestmark = pytest.mark.django_db

OURS = "vbcrm.auth.UserBackend"
DJANGOS = "django.contrib.auth.backends.ModelBackend"
PRESENCE = AgentPresence._meta.get_field("user").remote_field


def _page_user(client: Client):
    """The user of a page the client asks for, as the page had it."""
    response = client.get("/profile/")
    assert response.status_code == 200
    return response.wsgi_request.user


def test_a_login_is_ours_and_its_pages_read_the_presence_with_the_user(alice):
    services.presence_set(user=alice, available=True)
    client = Client()
    client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert client.session[BACKEND_SESSION_KEY] == OURS
    user = _page_user(client)
    assert PRESENCE.is_cached(user) and PRESENCE.get_cached_value(user).available
    page = client.get("/profile/").content.decode()
    assert "is-available" in page


def test_the_header_shows_away_without_a_presence_row_or_a_query(
    client, alice, django_assert_num_queries
):
    client.force_login(alice)  # through the first backend that reads users: ours
    assert client.session[BACKEND_SESSION_KEY] == OURS
    AgentPresence.objects.filter(user=alice).delete()
    user = UserBackend().get_user(alice.pk)
    assert PRESENCE.is_cached(user) and PRESENCE.get_cached_value(user) is None
    with django_assert_num_queries(0):
        assert not services.presence_get(user=user, loaded=True).available
    assert "is-away" in client.get("/profile/").content.decode()
    assert not AgentPresence.objects.filter(user=alice).exists()


def test_a_session_djangos_backend_opened_stays_open(alice):
    services.presence_set(user=alice, available=True)
    client = Client()
    client.force_login(alice, backend=DJANGOS)
    user = _page_user(client)
    assert user.is_authenticated and user.pk == alice.pk
    assert not PRESENCE.is_cached(user)  # read by Django's backend: the header reads it
    assert "is-available" in client.get("/profile/").content.decode()


def test_presence_get_reads_afresh_unless_asked_for_the_loaded_one(alice):
    services.presence_set(user=alice, available=True)
    user = get_user_model().objects.select_related("presence").get(pk=alice.pk)
    AgentPresence.objects.filter(user=alice).update(available=False)
    assert services.presence_get(user=user, loaded=True).available  # as read with the user
    assert not services.presence_get(user=user).available  # afresh


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_a_wrong_password_is_checked_once(alice, monkeypatch, username):
    """A refused login stops at our backend: Django's, listed after it for old sessions,
    does not hash the password a second time (an unknown user is hashed once too, so
    both take as long)."""
    hashed = []
    user_model = get_user_model()
    check, make = user_model.check_password, user_model.set_password

    def counted_check(self, raw):
        hashed.append("check")
        return check(self, raw)

    def counted_make(self, raw):
        hashed.append("make")
        return make(self, raw)

    monkeypatch.setattr(user_model, "check_password", counted_check)
    monkeypatch.setattr(user_model, "set_password", counted_make)
    client = Client()
    response = client.post("/login/", {"username": username, "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert len(hashed) == 1


def test_the_right_password_still_logs_in_after_wrong_ones(alice):
    client = Client()
    client.post("/login/", {"username": "alice", "password": "wrong"})
    client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_an_inactive_user_is_refused(alice):
    alice.is_active = False
    alice.save()
    client = Client()
    client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert "_auth_user_id" not in client.session
