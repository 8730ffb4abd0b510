from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from conversations import services
from conversations.models import Contact
from conversations.services import contacts
from tests.api.conftest import url
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db


def receive(number, phone: str, name: str, minutes_ago: int = 0) -> Contact:
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return services.message_receive(
        session=number, msg=inbound(phone=phone, push_name=name, timestamp=when)
    ).conversation.contact


@pytest.fixture
def ana(number):
    receive(number, "5511988880002", "Bruno", minutes_ago=5)
    return receive(number, "5511988880001", "Ana", minutes_ago=1)


@pytest.fixture
def fields(alice):
    return [
        contacts.custom_field_create(owner=alice, name="Plan", kind="choice", choices=["Gold"]),
        contacts.custom_field_create(owner=alice, name="Seats", kind="number"),
    ]


def test_the_list_searches_sorts_and_pages(ana, as_bob):
    body = as_bob.get(url("/contacts")).json()
    assert [c["name"] for c in body["items"]] == ["Ana", "Bruno"]
    assert body["items"][0]["phone"] == "5511988880001" and body["next_page"] is None
    assert [
        c["name"] for c in as_bob.get(url("/contacts"), {"search": "brun"}).json()["items"]
    ] == ["Bruno"]
    page = as_bob.get(url("/contacts"), {"sort": "name", "limit": 1}).json()
    assert [c["name"] for c in page["items"]] == ["Ana"] and page["next_page"] == 2
    page = as_bob.get(url("/contacts"), {"sort": "name", "limit": 1, "page": 2}).json()
    assert [c["name"] for c in page["items"]] == ["Bruno"] and page["next_page"] is None
    response = as_bob.get(url("/contacts"), {"sort": "phone"})
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_an_outsider_lists_nothing_and_gets_404s(ana, as_charlie):
    assert as_charlie.get(url("/contacts")).json() == {"items": [], "next_page": None}
    for method, body in (("get", None), ("patch", {"name": "Hacked"})):
        response = getattr(as_charlie, method)(
            url(f"/contacts/{ana.pk}"), body, content_type="application/json"
        )
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "detail": "Not found."}
    ana.refresh_from_db()
    assert ana.saved_name == ""


def test_anonymous_requests_are_401(ana, client):
    for method in ("get", "patch"):
        response = getattr(client, method)(url(f"/contacts/{ana.pk}"))
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert client.get(url("/contacts")).status_code == 401


def test_get_shows_fields_and_conversations_across_numbers(ana, fields, alice, as_alice, as_bob):
    other = whatsapp_services.session_create(owner=alice, name="Sales")
    elsewhere = receive(other, "5511988880001", "Ana")
    body = as_alice.get(url(f"/contacts/{ana.pk}")).json()
    assert body["name"] == "Ana" and body["push_name"] == "Ana" and body["saved_name"] == ""
    assert [(f["name"], f["type"], f["value"]) for f in body["custom_fields"]] == [
        ("Plan", "choice", ""),
        ("Seats", "number", ""),
    ]
    assert {c["session_id"] for c in body["conversations"]} == {ana.session_id, other.pk}
    # bob works Support only
    body = as_bob.get(url(f"/contacts/{ana.pk}")).json()
    assert {c["session_id"] for c in body["conversations"]} == {ana.session_id}
    assert as_bob.get(url(f"/contacts/{elsewhere.pk}")).status_code == 404


def test_patch_edits_name_notes_and_fields(ana, fields, as_bob):
    response = as_bob.patch(
        url(f"/contacts/{ana.pk}"),
        {"name": "Ana S.", "notes": "VIP", "custom_fields": {"plan": "gold", "Seats": 3}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "Ana S." and body["notes"] == "VIP"
    assert {f["name"]: f["value"] for f in body["custom_fields"]} == {"Plan": "Gold", "Seats": "3"}
    # only what is sent changes
    response = as_bob.patch(
        url(f"/contacts/{ana.pk}"),
        {"custom_fields": {"Seats": ""}},
        content_type="application/json",
    )
    body = response.json()
    assert body["name"] == "Ana S." and body["notes"] == "VIP"
    assert {f["name"]: f["value"] for f in body["custom_fields"]} == {"Plan": "Gold", "Seats": ""}


def test_patch_refuses_bad_values_and_unknown_fields_in_the_error_shape(ana, fields, as_bob):
    response = as_bob.patch(
        url(f"/contacts/{ana.pk}"),
        {"name": "X", "custom_fields": {"Seats": "many"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": [
            {
                "field": "custom_fields.Seats",
                "message": "Seats must be a number.",
                "code": "invalid",
            }
        ],
    }
    response = as_bob.patch(
        url(f"/contacts/{ana.pk}"),
        {"custom_fields": {"<b>Shoe</b>": "42"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["code"] == "unknown_field"
    assert response.json()["detail"][0]["field"] == "custom_fields.<b>Shoe</b>"
    response = as_bob.patch(
        url(f"/contacts/{ana.pk}"), {"notes": "a\x00b"}, content_type="application/json"
    )
    assert response.status_code == 400
    ana.refresh_from_db()
    assert ana.saved_name == "" and not ana.field_values.exists()


def test_the_browser_session_needs_csrf_to_patch(ana, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.get(url(f"/contacts/{ana.pk}")).status_code == 200
    response = client.patch(
        url(f"/contacts/{ana.pk}"), {"name": "X"}, content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"


def test_the_schema_lists_the_contacts_endpoints(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/whatsapp/contacts/{contact_id}"]) == {"get", "patch"}
    assert "get" in paths["/api/whatsapp/contacts"]
