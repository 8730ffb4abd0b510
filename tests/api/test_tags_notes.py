"""The REST API's tags (list, make, set on conversations and contacts) and notes."""

from __future__ import annotations

import pytest

from conversations import services
from conversations.models import Message
from tests.api.conftest import url
from tests.factories import inbound
from whatsapp import services as wa_services

pytestmark = pytest.mark.django_db


def test_it_lists_makes_and_sets_tags(number, conversation, as_bob, alice):
    made = as_bob.post(
        url("/tags"),
        {"number": number.pk, "name": "<script>x</script>", "color": "blue"},
        content_type="application/json",
    )
    assert made.status_code == 201
    tag = made.json()
    assert tag["owner_id"] == alice.pk and tag["name"] == "<script>x</script>"
    assert as_bob.get(url("/tags")).json() == [tag]
    assert as_bob.get(url(f"/tags?number={number.pk}")).json() == [tag]
    path = url(f"/conversations/{conversation.pk}/tags")
    put = as_bob.put(path, {"tag_ids": [tag["id"]]}, content_type="application/json")
    assert put.status_code == 200
    assert put.json() == {"tags": [{k: tag[k] for k in ("id", "name", "color")}]}
    assert as_bob.get(path).json() == put.json()
    contact = url(f"/contacts/{conversation.contact_id}/tags")
    put_contact = as_bob.put(contact, {"tag_ids": [tag["id"]]}, content_type="application/json")
    assert put_contact.status_code == 200
    assert as_bob.get(contact).json() == put.json()
    # filtered by the tag
    other = services.message_receive(session=number, msg=inbound(phone="5511900000077"))
    listed = as_bob.get(url(f"/conversations?tag={tag['id']}")).json()["items"]
    assert [c["id"] for c in listed] == [conversation.pk]
    assert other.conversation.pk in [
        c["id"] for c in as_bob.get(url("/conversations")).json()["items"]
    ]
    # and cleared
    assert as_bob.put(path, {"tag_ids": []}, content_type="application/json").json() == {"tags": []}


def test_it_refuses_someone_else_s_tags_and_bad_input(number, conversation, as_bob, charlie):
    other = wa_services.session_create(owner=charlie, name="Other")
    theirs = services.tag_create(session=other, name="theirs")
    path = url(f"/conversations/{conversation.pk}/tags")
    refused = as_bob.put(path, {"tag_ids": [theirs.pk]}, content_type="application/json")
    assert refused.status_code == 400
    assert as_bob.put(path, {"tag_ids": "x"}, content_type="application/json").status_code == 400
    bad = as_bob.post(
        url("/tags"),
        {"number": number.pk, "name": "x", "color": "#fff"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert (
        as_bob.post(
            url("/tags"), {"number": other.pk, "name": "x"}, content_type="application/json"
        ).status_code
        == 400
    )


def test_an_outsider_gets_404_on_every_team_endpoint(number, conversation, as_charlie):
    tag = services.tag_create(session=number, name="vip")
    body = {"tag_ids": [tag.pk]}
    for path in (
        f"/conversations/{conversation.pk}/tags",
        f"/contacts/{conversation.contact_id}/tags",
    ):
        assert as_charlie.get(url(path)).status_code == 404
        assert as_charlie.put(url(path), body, content_type="application/json").status_code == 404
    note = as_charlie.post(
        url(f"/conversations/{conversation.pk}/notes"),
        {"text": "x"},
        content_type="application/json",
    )
    assert note.status_code == 404
    assert as_charlie.get(url("/tags")).json() == []
    assert not conversation.tags.exists()


def test_a_note_from_the_api_is_a_note_whatever_the_client_claims(conversation, as_bob):
    answer = as_bob.post(
        url(f"/conversations/{conversation.pk}/notes"),
        {"text": "internal @alice", "direction": "ATENDENTE", "status": "pending"},
        content_type="application/json",
    )
    assert answer.status_code == 201
    assert (answer.json()["direction"], answer.json()["status"]) == ("NOTA", "note")
    assert services.outbox_pending(session_id=conversation.session_id) == []
    # and the send door never makes a note: a claimed direction is no field of it
    sent = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "hello", "direction": "NOTA"},
        content_type="application/json",
    )
    assert sent.status_code in (201, 422)
    if sent.status_code == 201:
        assert sent.json()["direction"] == "ATENDENTE"
    assert Message.objects.filter(direction="NOTA").count() == 1
    listed = as_bob.get(url(f"/conversations/{conversation.pk}/messages")).json()["items"]
    assert "NOTA" in [m["direction"] for m in listed]
