"""The socket's team frames and events: notes, @mentions, tags, and their access checks."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Message, NoteMention, Tag
from tests.realtime.test_consumer import _fresh_layer, connect, drain, frame_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

__all__ = ["_fresh_layer"]  # the fixture, used here too

note_add = database_sync_to_async(services.note_add)
tag_create = database_sync_to_async(services.tag_create)


async def test_a_mention_reaches_the_mentioned_agent_alone(conversation, alice, bob, charlie):
    a, b, c = await connect(alice), await connect(bob), await connect(charlie)
    await note_add(user=alice, conversation=conversation, text="@bob <b>call</b> her")
    mention = await frame_of(b, "note_mention")
    assert mention["conversation_id"] == conversation.pk
    assert mention["by"] == "alice" and mention["text"] == "@bob <b>call</b> her"
    # the note itself reaches the number's people as a note, escaped
    new = await frame_of(a, "new_message")
    assert new["message"]["direction"] == "NOTA"
    assert 'class="msg note' in new["html"] and "&lt;b&gt;call" in new["html"]
    assert not [f for f in await drain(a) if f["type"] == "note_mention"]  # the writer
    assert await c.receive_nothing(timeout=0.5)  # not on the number
    for s in (a, b, c):
        await s.disconnect()


async def test_an_outsider_cannot_be_mentioned(conversation, alice, charlie):
    c = await connect(charlie)
    await note_add(user=alice, conversation=conversation, text="@charlie look")
    assert await c.receive_nothing(timeout=0.5)
    assert not await database_sync_to_async(NoteMention.objects.exists)()
    await c.disconnect()


async def test_add_note_over_the_socket_is_a_note_never_a_send(conversation, bob, charlie):
    b = await connect(bob)
    await b.send_json_to(
        {
            "type": "add_note",
            "conversation_id": conversation.pk,
            "text": "internal",
            # whatever else the client claims, a note is a note
            "direction": "ATENDENTE",
            "status": "pending",
            "ref": "n1",
        }
    )
    answer = await frame_of(b, "note_added")
    assert answer["ref"] == "n1"
    note = await database_sync_to_async(Message.objects.get)(pk=answer["id"])
    assert (note.direction, note.status) == ("NOTA", "note")
    outbox = await database_sync_to_async(services.outbox_pending)(
        session_id=conversation.session_id
    )
    assert outbox == []
    c = await connect(charlie)
    await c.send_json_to({"type": "add_note", "conversation_id": conversation.pk, "text": "x"})
    refused = await frame_of(c, "error")
    assert refused["code"] == "not_found"
    await c.send_json_to({"type": "add_note", "conversation_id": conversation.pk, "text": 5})
    assert (await frame_of(c, "error"))["code"] == "invalid"
    await b.disconnect()
    await c.disconnect()


async def test_tags_set_over_the_socket_reach_the_number_s_people_live(
    conversation, number, alice, bob, charlie
):
    vip = await tag_create(session=number, name="<i>vip</i>", color="green")
    a, b, c = await connect(alice), await connect(bob), await connect(charlie)
    await b.send_json_to(
        {"type": "set_tags", "conversation_id": conversation.pk, "tag_ids": [vip.pk]}
    )
    answer = await frame_of(b, "tags_set")
    assert answer["tag_ids"] == [vip.pk] and answer["target"] == "conversation"
    changed = await frame_of(a, "tags_changed")
    assert changed["conversation_id"] == conversation.pk
    # data only: the page puts the name in as text
    assert changed["tags"] == [{"id": vip.pk, "name": "<i>vip</i>", "color": "green"}]
    assert changed["html"] == ""
    await b.send_json_to(
        {
            "type": "set_tags",
            "conversation_id": conversation.pk,
            "target": "contact",
            "tag_ids": [vip.pk],
        }
    )
    changed = await frame_of(a, "tags_changed")
    assert changed["contact_tags"] == [{"id": vip.pk, "name": "<i>vip</i>", "color": "green"}]
    assert await c.receive_nothing(timeout=0.5)
    # charlie may neither set tags on alice's number nor use her tags
    await c.send_json_to({"type": "set_tags", "conversation_id": conversation.pk, "tag_ids": []})
    assert (await frame_of(c, "error"))["code"] == "not_found"
    await b.send_json_to({"type": "set_tags", "conversation_id": conversation.pk, "tag_ids": ["1"]})
    assert (await frame_of(b, "error"))["code"] == "invalid"
    for s in (a, b, c):
        await s.disconnect()


async def test_a_tag_of_another_owner_is_refused_over_the_socket(conversation, bob, charlie):
    from whatsapp import services as wa_services

    other = await database_sync_to_async(wa_services.session_create)(owner=charlie, name="O")
    theirs = await tag_create(session=other, name="theirs")
    b = await connect(bob)
    await b.send_json_to(
        {"type": "set_tags", "conversation_id": conversation.pk, "tag_ids": [theirs.pk]}
    )
    assert (await frame_of(b, "error"))["code"] == "not_found"
    assert not await database_sync_to_async(conversation.tags.exists)()
    assert await database_sync_to_async(Tag.objects.count)() == 1
    await b.disconnect()


async def test_reading_mentions_tells_the_user_s_other_pages(conversation, alice, bob):
    b = await connect(bob)
    await note_add(user=alice, conversation=conversation, text="@bob")
    await frame_of(b, "note_mention")
    await database_sync_to_async(services.mentions_mark_read)(user=bob, conversation=conversation)
    frame = await frame_of(b, "mentions_read")
    assert frame["conversation_id"] == conversation.pk
    await b.disconnect()
