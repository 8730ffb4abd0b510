"""Message and conversation events carry rows (realtime.snapshots); each web process
renders them. What it renders must be exactly what the pages render for the same rows,
without touching the database (the hub runs on the event loop)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from conversations import services
from conversations.models import Contact, Message
from conversations.serializers import conversation_data, message_data
from realtime import events, fragments, snapshots
from tests.factories import inbound
from whatsapp.gateway.base import MessageKind

pytestmark = pytest.mark.django_db

LANGS = ["en", "pt-br"]


def _over_the_wire(rows: dict) -> dict:
    """What the layer delivers: plain JSON types only."""
    return json.loads(json.dumps(rows))


def _page_message(pk: int, lang: str) -> tuple[dict, str]:
    m = Message.objects.select_related("conversation__contact").get(pk=pk)
    with translation.override(lang):
        context = {"m": m, "contact_name": m.conversation.contact.display_name}
        return message_data(m), render_to_string("conversations/_message.html", context)


def _page_row(message: Message, lang: str) -> tuple[dict, str]:
    c = type(message.conversation).objects.get(pk=message.conversation_id)
    with translation.override(lang):
        return conversation_data(c), render_to_string(
            "conversations/_conversation_row.html", {"c": c}
        )


@pytest.fixture
def thread(number, alice, bob, tmp_path, settings):
    """Messages of every shape a fragment shows: a name-less inbound one, a quote of a
    stored message and of a missing one, an agent's reply, a file, a location; the
    conversation assigned to an agent."""
    settings.MEDIA_ROOT = str(tmp_path)
    first = services.message_receive(session=number, msg=inbound(text="hi <b>there</b>"))
    conversation = first.conversation
    Message.objects.filter(pk=first.pk).update(sender_name="")
    services.conversation_assign(conversation=conversation, assignee=bob)
    reply = services.message_queue_outbound(
        user=alice, conversation=conversation, text="on it", reply_to=first
    )
    dangling = services.message_receive(
        session=number, msg=inbound(text="re: lost", quoted_id="NOT-STORED")
    )
    photo = services.message_receive(
        session=number,
        msg=inbound(kind=MessageKind.IMAGE, text="caption", mimetype="image/jpeg", media_ref=b"r"),
    )
    (tmp_path / "p.jpg").write_bytes(b"jpeg")
    services.message_media_stored(message_id=photo.pk, path="p.jpg", size=4)
    place = services.message_receive(
        session=number,
        msg=inbound(
            kind=MessageKind.LOCATION, latitude=-22.9, longitude=-43.2, location_name="Rio"
        ),
    )
    return [first.pk, reply.pk, dangling.pk, photo.pk, place.pk]


def _fresh(pk: int) -> Message:
    """The message as a writer holds it when it sends the event."""
    return Message.objects.select_related("conversation__contact").get(pk=pk)


def test_new_message_frames_match_the_pages_and_need_no_query(thread, django_assert_num_queries):
    for pk in thread:
        m = _fresh(pk)
        rows = {
            **events._message_rows(m),
            "conversation": events._conversation_rows(m.conversation),
        }
        push = {"event": "new_message", "rows": _over_the_wire(rows)}
        with django_assert_num_queries(0):
            frames = fragments.frames_for(push, LANGS, {})
        for lang in LANGS:
            frame = json.loads(frames[lang])
            data, html = _page_message(pk, lang)
            row_data, row_html = _page_row(m, lang)
            assert frame["type"] == "new_message"
            assert (frame["message"], frame["html"]) == (data, html)
            assert (frame["conversation"], frame["row_html"]) == (row_data, row_html)
        assert json.loads(frames["en"])["html"] != json.loads(frames["pt-br"])["html"]


def test_status_and_conversation_frames_match_the_pages(thread, django_assert_num_queries):
    for pk in thread:
        m = _fresh(pk)
        push = {"event": "message_status", "rows": _over_the_wire(events._message_rows(m))}
        with django_assert_num_queries(0):
            frames = fragments.frames_for(push, LANGS, {})
        for lang in LANGS:
            frame = json.loads(frames[lang])
            assert (frame["message"], frame["html"]) == _page_message(pk, lang)
    m = _fresh(thread[0])
    rows = {"conversation": events._conversation_rows(m.conversation)}
    with django_assert_num_queries(0):
        frames = fragments.frames_for(
            {"event": "conversation_updated", "rows": _over_the_wire(rows)}, LANGS, {}
        )
    for lang in LANGS:
        frame = json.loads(frames[lang])
        assert (frame["conversation"], frame["html"]) == _page_row(m, lang)


def test_a_batch_reads_and_renders_a_shared_conversation_once(number, django_assert_num_queries):
    stored = services.message_receive_batch(
        session=number, msgs=[inbound(text=f"m{i}") for i in range(3)]
    )
    text = events._conversation_rows(stored[-1].conversation)
    pushes = [
        {"event": "new_message", "rows": {**events._message_rows(m), "conversation": text}}
        for m in stored
    ]
    cache: dict = {}
    rows_rendered = []
    real = fragments.render_to_string

    def counting(name, context):
        rows_rendered.append(name)
        return real(name, context)

    fragments.render_to_string, saved = counting, fragments.render_to_string
    try:
        with django_assert_num_queries(0):
            for push in pushes:
                fragments.frames_for(push, ["en"], cache)
    finally:
        fragments.render_to_string = saved
    assert rows_rendered.count("conversations/_conversation_row.html") == 1
    assert rows_rendered.count("conversations/_message.html") == 3


def test_rows_carry_no_secret_and_nothing_the_fragments_do_not_show(thread):
    m = _fresh(thread[1])  # the agent's reply: it names a user and a number
    text = json.dumps(
        {**events._message_rows(m), "conversation": events._conversation_rows(m.conversation)}
    )
    assert "password" not in text and "pbkdf2" not in text
    assert "lease" not in text and "qr_code" not in text
    conversation = json.loads(json.loads(text)["conversation"])
    assert set(conversation["session"]) == {"id", "name"}
    assert set(conversation["assigned_to"]) == {"id", "username", "first_name", "last_name"}


def test_a_column_left_out_of_a_snapshot_is_deferred_not_defaulted(
    number, django_assert_num_queries
):
    contact = Contact.objects.create(session=number, jid="1@s.whatsapp.net", push_name="Ana")
    partial = snapshots.load(Contact, snapshots.dump(contact, ["id", "jid"]))
    with django_assert_num_queries(0):
        assert partial.jid == "1@s.whatsapp.net"
    with django_assert_num_queries(1):  # not "" in silence: the database is asked
        assert partial.push_name == "Ana"
    whole = snapshots.load(Contact, _over_the_wire(snapshots.dump(contact)))
    with django_assert_num_queries(0):
        assert (whole.pk, whole.push_name, whole.created_at) == (
            contact.pk,
            "Ana",
            contact.created_at,
        )


def test_a_batch_of_events_reads_the_number_once_not_per_conversation(
    number, django_assert_num_queries, django_capture_on_commit_callbacks
):
    stored = services.message_receive_batch(
        session=number,
        msgs=[inbound(phone=f"55119888800{i % 3:02d}", text=f"m{i}") for i in range(6)],
    )
    # as a writer may hold them: contacts loaded, the number not
    messages = list(
        Message.objects.select_related("conversation__contact").filter(
            pk__in=[m.pk for m in stored]
        )
    )
    with (
        mock.patch("realtime.events._push_rows") as push,
        django_assert_num_queries(1),  # exits last: counts the callbacks' queries
        django_capture_on_commit_callbacks(execute=True),
    ):
        events.messages_created(messages)
    assert push.call_count == 6
    sent = [json.loads(call.args[2]["conversation"]) for call in push.call_args_list]
    assert {s["session"]["name"] for s in sent} == {"Support"}
    assert len({s["contact"]["id"] for s in sent}) == 3
