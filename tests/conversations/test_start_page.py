"""The inbox page's doors for writing first and for the composer's other kinds (the
phone lookup faked: the worker's side runs in tests/whatsapp/test_outbound.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import Conversation, Message
from whatsapp.models import WhatsAppSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(monkeypatch, number):
    WhatsAppSession.objects.filter(pk=number.pk).update(status="connected")

    def fake(session_id, phones, timeout):
        return {
            "type": "worker.lookup.answer",
            "results": [
                {"phone": p, "on_whatsapp": p != "5511977770000", "jid": f"{p}@s.whatsapp.net"}
                for p in phones
            ],
        }

    monkeypatch.setattr("conversations.services.start.worker_lookup", fake)
    return number


def test_the_inbox_offers_the_dialog_to_whoever_works_a_number(client, bob, charlie, number):
    client.force_login(bob)
    page = client.get("/").content.decode()
    assert 'id="start-open"' in page and 'id="start-dialog"' in page
    assert f'<option value="{number.pk}">Support' in page
    client.force_login(charlie)
    assert 'id="start-dialog"' not in client.get("/").content.decode()


def test_starting_answers_where_the_conversation_is(client, bob, charlie, connected):
    client.force_login(bob)
    start = reverse("conversations:start")
    r = client.post(start, {"session_id": connected.pk, "phone": "+55 11 98888-0001", "text": "Oi"})
    assert r.status_code == 201
    conversation = Conversation.objects.get()
    assert r.json() == {
        "conversation_id": conversation.pk,
        "url": f"/conversations/{conversation.pk}/",
    }
    r = client.post(start, {"session_id": connected.pk, "phone": "+55 11 97777-0000", "text": "Oi"})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "not_on_whatsapp",
        "message": "This number is not on WhatsApp.",
        "field": "phone",
    }
    client.force_login(charlie)
    r = client.post(start, {"session_id": connected.pk, "phone": "5511988880001", "text": "Oi"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "session_id"
    assert Message.objects.count() == 1


def test_the_composer_sends_a_location_and_a_contact_card(client, bob, conversation):
    client.force_login(bob)
    send = reverse("conversations:send", args=[conversation.pk])
    r = client.post(
        send,
        {
            "kind": "location",
            "latitude": "-23,5505",
            "longitude": "-46.6333",
            "location_name": "Sé",
        },
    )
    assert r.status_code == 201, r.content
    assert r.json()["message"]["kind"] == "location"
    assert 'class="location"' in r.json()["message"]["html"]
    m = Message.objects.get(pk=r.json()["message"]["id"])
    assert (m.latitude, m.longitude, m.location_name) == (-23.5505, -46.6333, "Sé")
    r = client.post(send, {"kind": "location", "latitude": "north", "longitude": "1"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_coordinate"
    r = client.post(
        send, {"kind": "contact", "contact_name": "Ana", "contact_phone": "+55 11 97777-0001"}
    )
    assert r.status_code == 201 and "Ana" in r.json()["message"]["html"]
