"""The REST API: starting a conversation, and sending a location or a contact card. The
phone lookup is faked here (the worker's side runs end to end in
tests/whatsapp/test_outbound.py)."""

from __future__ import annotations

import pytest

from conversations.models import Contact, Conversation, Message
from tests.api.conftest import url
from whatsapp.models import WhatsAppSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def lookups(monkeypatch, number):
    """The number is connected and its worker answers: every phone is on WhatsApp but
    those in ``unregistered``."""
    WhatsAppSession.objects.filter(pk=number.pk).update(status="connected")
    asked: list[list[str]] = []
    unregistered: set[str] = set()

    def fake(session_id, phones, timeout):
        assert session_id == number.pk
        asked.append(list(phones))
        return {
            "type": "worker.lookup.answer",
            "results": [
                {"phone": p, "on_whatsapp": p not in unregistered, "jid": f"{p}@s.whatsapp.net"}
                for p in phones
            ],
        }

    monkeypatch.setattr("conversations.services.start.worker_lookup", fake)
    fake.asked, fake.unregistered = asked, unregistered
    return fake


def test_start_a_conversation_answers_it_and_its_message(as_bob, number, lookups, bob):
    body = {"session_id": number.pk, "phone": "+55 (11) 98888-0001", "text": "Olá"}
    r = as_bob.post(url("/conversations"), body, content_type="application/json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["conversation"]["contact"]["phone"] == "5511988880001"
    assert data["conversation"]["session_id"] == number.pk
    assert data["message"]["body"] == "Olá" and data["message"]["status"] == "pending"
    assert data["message"]["sent_by_id"] == bob.pk
    assert lookups.asked == [["5511988880001"]]
    # again: the same conversation
    again = as_bob.post(
        url("/conversations"), {**body, "text": "Oi"}, content_type="application/json"
    )
    assert again.json()["conversation"]["id"] == data["conversation"]["id"]
    assert Conversation.objects.count() == 1 and Message.objects.count() == 2


def test_start_with_a_location(as_bob, number, lookups):
    body = {
        "session_id": number.pk,
        "phone": "5511988880001",
        "location": {"latitude": -23.55, "longitude": -46.63, "name": "Sé"},
    }
    r = as_bob.post(url("/conversations"), body, content_type="application/json")
    assert r.status_code == 201, r.content
    m = r.json()["message"]
    assert (m["kind"], m["latitude"], m["longitude"], m["location_name"]) == (
        "location",
        -23.55,
        -46.63,
        "Sé",
    )


def test_start_refusals(as_bob, as_charlie, number, lookups):
    def post(client, **body):
        base = {"session_id": number.pk, "phone": "5511988880001", "text": "Olá"}
        return client.post(url("/conversations"), {**base, **body}, content_type="application/json")

    lookups.unregistered.add("5511977770000")
    r = post(as_bob, phone="+55 11 97777-0000")
    assert r.status_code == 422
    assert r.json() == {
        "error": "not_on_whatsapp",
        "detail": [
            {
                "field": "phone",
                "message": "This number is not on WhatsApp.",
                "code": "not_on_whatsapp",
            }
        ],
    }
    assert post(as_charlie).status_code == 404  # a number charlie does not work
    assert post(as_bob, session_id=999999).status_code == 404
    r = post(as_bob, phone="12")
    assert r.status_code == 400 and r.json()["detail"][0]["code"] == "invalid_phone"
    WhatsAppSession.objects.filter(pk=number.pk).update(status="disconnected")
    r = post(as_bob)
    assert r.status_code == 409
    assert r.json() == {
        "error": "not_connected",
        "detail": "The number is not connected; reconnect it in Numbers.",
    }
    assert not Contact.objects.exists()


def test_send_a_location_and_a_contact_card(as_bob, conversation):
    send = url(f"/conversations/{conversation.pk}/send")
    r = as_bob.post(
        send,
        {"location": {"latitude": 38.72, "longitude": -9.14, "address": "Lisboa"}},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    assert (r.json()["kind"], r.json()["body"]) == ("location", "Lisboa")
    r = as_bob.post(
        send,
        {"contact": {"name": "Ana", "phone": "+1 415 555 0100"}},
        content_type="application/json",
    )
    assert r.status_code == 201 and r.json()["kind"] == "contact"
    assert "FN:Ana" in r.json()["body"]
    r = as_bob.post(
        send, {"location": {"latitude": 91, "longitude": 0}}, content_type="application/json"
    )
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "location.latitude"
    r = as_bob.post(send, {"kind": "contact"}, content_type="application/json")
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "contact"


def test_the_schema_documents_the_new_fields(client):
    schema = client.get("/api/openapi.json").json()
    start = schema["paths"]["/api/whatsapp/conversations"]["post"]
    body = start["requestBody"]["content"]["application/json"]["schema"]
    assert {"session_id", "phone", "location", "contact"} <= set(body["properties"])
    assert "$defs" not in str(body)
