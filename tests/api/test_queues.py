"""The queues API: listing, moving a conversation, availability; and its access rule."""

from __future__ import annotations

import json

import pytest

from conversations import services
from conversations.models import Conversation
from conversations.services import QueueFields
from tests.api.conftest import url
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def queues(number, bob):
    return (
        services.queue_create(
            session=number, fields=QueueFields(name="<b>Vendas</b>", agent_ids=(bob.pk,))
        ),
        services.queue_create(session=number, fields=QueueFields(name="Suporte", position=2)),
    )


def post(client, path: str, body: dict):
    return client.post(url(path), json.dumps(body), content_type="application/json")


def test_owners_list_every_queue_agents_theirs_outsiders_none(queues, as_alice, as_bob, as_charlie):
    names = [q["name"] for q in as_alice.get(url("/queues")).json()]
    assert names == ["<b>Vendas</b>", "Suporte"]  # JSON: data, not markup
    assert [q["name"] for q in as_bob.get(url("/queues")).json()] == ["<b>Vendas</b>"]
    assert as_charlie.get(url("/queues")).json() == []


def test_an_agent_moves_a_conversation(queues, conversation, as_bob):
    response = post(as_bob, f"/conversations/{conversation.pk}/queue", {"queue_id": queues[1].pk})
    assert response.status_code == 200
    assert response.json()["queue_id"] == queues[1].pk
    assert Conversation.objects.get(pk=conversation.pk).queue == queues[1]


def test_moving_is_refused_to_outsiders_and_to_other_numbers_queues(
    queues, conversation, as_charlie, as_bob, charlie
):
    path = f"/conversations/{conversation.pk}/queue"
    assert post(as_charlie, path, {"queue_id": queues[0].pk}).status_code == 404
    theirs = whatsapp_services.session_create(owner=charlie, name="Theirs")
    foreign = services.queue_create(session=theirs, fields=QueueFields(name="X"))
    assert post(as_bob, path, {"queue_id": foreign.pk}).status_code == 404
    assert Conversation.objects.get(pk=conversation.pk).queue is None


def test_the_menu_bot_messages_say_they_are_automatic(queues, as_alice, number):
    message = services.message_receive(session=number, msg=inbound(phone="5511955550001"))
    assert message is not None
    page = as_alice.get(url(f"/conversations/{message.conversation_id}/messages")).json()
    bot = [m for m in page["items"] if m["automatic"]]
    assert len(bot) == 1 and bot[0]["direction"] == "ATENDENTE"
    assert bot[0]["body"].endswith("1 — <b>Vendas</b>\n2 — Suporte")


def test_availability(as_bob, client):
    assert as_bob.get(url("/me/availability")).json() == {"available": False}
    response = as_bob.put(
        url("/me/availability"), json.dumps({"available": True}), content_type="application/json"
    )
    assert response.json() == {"available": True}
    assert as_bob.get(url("/me/availability")).json() == {"available": True}
    assert client.get(url("/me/availability")).status_code == 401
