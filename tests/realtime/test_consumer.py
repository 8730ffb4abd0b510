"""The /ws/ socket against the real ASGI application (auth, origin check, routing).

Events come from the services, as in production: they are built after commit in
realtime.events and forwarded by the consumer. transaction=True: the consumer reads
the database on other connections (django/channels#1110).
"""

from __future__ import annotations

import json
import uuid
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message
from realtime.consumers import InboxConsumer
from tests.factories import inbound
from vbcrm.asgi import application
from whatsapp import services as wa_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

WAIT = 3  # seconds for a frame that must come (Redis adds latency)


@pytest.fixture(autouse=True)
def _fresh_layer(settings):
    """A fresh channel layer per test: its queues belong to this test's event loop. On
    Redis, a prefix of its own, so other runs sharing the server never cross-talk."""
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    for layer in layers.values():
        if "redis" in layer["BACKEND"].lower():
            layer.setdefault("CONFIG", {})["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def connect(user=None, *, lang: str = "", cookie: str | None = None):
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(_session_cookie)(user)
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    path = "/ws/" + (f"?lang={lang}" if lang else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _code = await communicator.connect(timeout=WAIT)
    communicator.connected = connected
    return communicator


async def frames_from(communicator, timeout: float = WAIT) -> list[dict]:
    """The frames of the next socket message (events that arrive together share one,
    a frame a line)."""
    text = await communicator.receive_from(timeout=timeout)
    return [json.loads(line) for line in text.split("\n")]


async def frame_of(communicator, wanted: str) -> dict:
    """The next frame of type ``wanted``, skipping others (e.g. conversation_updated)."""
    pending = getattr(communicator, "pending", [])
    for _ in range(10):
        if not pending:
            pending += await frames_from(communicator)
        frame = pending.pop(0)
        communicator.pending = pending
        if frame["type"] == wanted:
            return frame
    raise AssertionError(f"no {wanted} frame")


async def drain(communicator) -> list[dict]:
    frames = getattr(communicator, "pending", [])
    communicator.pending = []
    while not await communicator.receive_nothing(timeout=0.3):
        frames += await frames_from(communicator)
    return frames


receive = database_sync_to_async(services.message_receive)


# --- connecting ------------------------------------------------------------------------


async def test_it_refuses_anonymous_sockets(db):
    assert not (await connect()).connected
    assert not (await connect(cookie="not-a-session")).connected


async def test_it_refuses_other_origins(alice):
    cookie = await database_sync_to_async(_session_cookie)(alice)
    communicator = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", f"sessionid={cookie}".encode())],
    )
    connected, _ = await communicator.connect(timeout=WAIT)
    assert not connected


# --- server -> client events ----------------------------------------------------------------


async def test_a_new_message_reaches_the_number_s_people_only(number, alice, bob, charlie):
    sockets = [await connect(u) for u in (alice, bob, charlie)]
    await receive(session=number, msg=inbound(text="<img src=x onerror=alert(1)>", push_name="Ana"))
    for s in sockets[:2]:
        frame = await frame_of(s, "new_message")
        assert frame["message"]["body"] == "<img src=x onerror=alert(1)>"
        assert frame["conversation"]["contact"]["name"] == "Ana"
        # the fragment is escaped: the body is text, never markup
        assert "&lt;img src=x onerror=alert(1)&gt;" in frame["html"]
        assert "<img src=x" not in frame["html"]
        assert 'id="conversation-' in frame["row_html"]
    assert await sockets[2].receive_nothing(timeout=0.5)
    for s in sockets:
        await s.disconnect()


async def test_conversation_updated_reaches_the_number_s_people(conversation, alice, bob, charlie):
    a, c = await connect(alice), await connect(charlie)
    await database_sync_to_async(services.conversation_set_status)(
        conversation=conversation, status="pending"
    )
    frame = await frame_of(a, "conversation_updated")
    assert frame["conversation"]["id"] == conversation.pk
    assert frame["conversation"]["status"] == "pending"
    assert f'id="conversation-{conversation.pk}"' in frame["html"]
    assert await c.receive_nothing(timeout=0.5)
    await a.disconnect()
    await c.disconnect()


async def test_mark_as_read_clears_unread_and_tells_everyone(conversation, alice, bob):
    a, b = await connect(alice), await connect(bob)
    await b.send_json_to({"type": "mark_as_read", "conversation_id": conversation.pk, "ref": "r1"})
    answer = await frame_of(b, "marked_read")
    assert answer == {
        "type": "marked_read",
        "conversation_id": conversation.pk,
        "count": 1,
        "ref": "r1",
    }
    read = await frame_of(a, "messages_read")
    assert read["conversation_id"] == conversation.pk and read["by"] == bob.pk
    updated = await frame_of(a, "conversation_updated")
    assert updated["conversation"]["unread_count"] == 0
    row = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert row.unread_count == 0
    await a.disconnect()
    await b.disconnect()


async def test_message_status_goes_to_sockets_that_opened_the_conversation(
    conversation, alice, bob
):
    a, b = await connect(alice), await connect(bob)
    await a.send_json_to({"type": "join_conversation", "conversation_id": conversation.pk})
    assert (await frame_of(a, "joined_conversation"))["conversation_id"] == conversation.pk
    message = await database_sync_to_async(services.message_queue_outbound)(
        user=alice, conversation=conversation, text="on its way"
    )
    await drain(a)
    await drain(b)
    await database_sync_to_async(services.outbox_sent)(
        message_id=message.pk, wa_id=message.wa_id, timestamp=timezone.now()
    )
    frame = await frame_of(a, "message_status")
    assert frame["message"]["id"] == message.pk and frame["message"]["status"] == "sent"
    assert 'data-status="sent"' in frame["html"]
    assert await b.receive_nothing(timeout=0.5)  # bob has not opened it
    await a.send_json_to({"type": "leave_conversation", "conversation_id": conversation.pk})
    await frame_of(a, "left_conversation")
    await database_sync_to_async(services.message_receipt)(
        session=conversation.session, message_ids=[message.wa_id], status="read"
    )
    assert await a.receive_nothing(timeout=0.5)
    await a.disconnect()
    await b.disconnect()


async def session_frames(communicator) -> list[dict]:
    """Every session_status frame that arrives now (the owner's sockets get one per
    group: the number's and their own)."""
    frames = [await frame_of(communicator, "session_status")]
    frames += [f for f in await drain(communicator) if f["type"] == "session_status"]
    return frames


async def test_session_status_carries_the_qr_and_pairing_codes_to_the_owner_only(
    number, alice, bob, charlie
):
    a, b, c = await connect(alice), await connect(bob), await connect(charlie)
    agent_pt = await connect(bob, lang="pt-br")
    await database_sync_to_async(wa_services.session_on_qr)(session_id=number.pk, code="2@abc,def")
    for frame in await session_frames(a):
        assert frame["session"]["status"] == "waiting_qr"
        assert frame["session"]["qr_svg"].startswith("<svg")
    for s in (b, agent_pt):
        for frame in await session_frames(s):
            # the agent hears that the number waits, never the code
            assert frame["session"]["id"] == number.pk
            assert frame["session"]["status"] == "waiting_qr"
            assert frame["session"]["qr_svg"] == "" and frame["session"]["pair_code"] == ""
    assert await c.receive_nothing(timeout=0.5)

    await database_sync_to_async(wa_services.session_on_pair_code)(
        session_id=number.pk, phone="5511999990000", code="ABCD-EFGH"
    )
    assert {f["session"]["pair_code"] for f in await session_frames(a)} == {"ABCD-EFGH"}
    for s in (b, agent_pt):
        raw = [await s.receive_from(timeout=WAIT)]
        await s.send_json_to({"type": "join"})  # a round trip: what was sent came before
        while json.loads(raw[-1])["type"] != "joined":
            raw.append(await s.receive_from(timeout=WAIT))
        assert json.loads(raw[0])["session"]["status"] == "pairing"
        assert not any("ABCD-EFGH" in text for text in raw)
    assert await c.receive_nothing(timeout=0.5)
    for s in (a, b, c, agent_pt):
        await s.disconnect()


async def test_an_agent_who_is_also_an_owner_gets_only_the_own_numbers_codes(number, alice, bob):
    mine = await database_sync_to_async(wa_services.session_create)(owner=bob, name="Bob's")
    b = await connect(bob)
    await database_sync_to_async(wa_services.session_on_qr)(session_id=number.pk, code="2@a,b")
    assert all(f["session"]["qr_svg"] == "" for f in await session_frames(b))
    await database_sync_to_async(wa_services.session_on_qr)(session_id=mine.pk, code="2@c,d")
    frames = await session_frames(b)
    assert {f["session"]["id"] for f in frames} == {mine.pk}
    assert all(f["session"]["qr_svg"].startswith("<svg") for f in frames)
    await b.disconnect()


async def test_events_are_rendered_once_per_language_read_not_per_socket(number, alice, bob):
    """The web process renders a message event when it arrives: once per language its
    sockets speak, whatever the number of sockets, and never a language nobody reads."""
    from django.template.loader import render_to_string

    english = [await connect(alice, lang="en"), await connect(bob, lang="en")]
    with mock.patch("realtime.fragments.render_to_string", wraps=render_to_string) as render:
        await receive(session=number, msg=inbound(text="english only"))
        for s in english:
            assert (await frame_of(s, "new_message"))["message"]["body"] == "english only"
    templates = [call.args[0] for call in render.call_args_list]
    assert templates.count("conversations/_message.html") == 1
    assert templates.count("conversations/_conversation_row.html") == 1

    sockets = [*english, await connect(alice, lang="pt-br"), await connect(bob, lang="pt-br")]
    with mock.patch("realtime.fragments.render_to_string", wraps=render_to_string) as render:
        await receive(session=number, msg=inbound(text="both"))
        frames = [await frame_of(s, "new_message") for s in sockets]
    templates = [call.args[0] for call in render.call_args_list]
    assert templates.count("conversations/_message.html") == 2
    assert templates.count("conversations/_conversation_row.html") == 2
    assert frames[0] == frames[1] and frames[2] == frames[3] and frames[0] != frames[2]
    for s in sockets:
        await s.disconnect()


async def test_each_socket_gets_the_frame_in_its_page_language(number, alice):
    english, portuguese = await connect(alice, lang="en"), await connect(alice, lang="pt-br")
    await database_sync_to_async(wa_services.session_on_qr)(session_id=number.pk, code="2@x")
    en = (await frame_of(english, "session_status"))["session"]["status_label"]
    pt = (await frame_of(portuguese, "session_status"))["session"]["status_label"]
    assert en == "Waiting for QR scan"
    assert pt != en and pt
    await english.disconnect()
    await portuguese.disconnect()


# --- client -> server frames --------------------------------------------------------------------


async def test_send_message_queues_a_reply_once_per_client_key(conversation, alice, bob):
    a, b = await connect(alice), await connect(bob)
    frame = {
        "type": "send_message",
        "conversation_id": conversation.pk,
        "text": "Olá!",
        "client_key": "k-1",
    }
    await a.send_json_to(frame)
    queued = await frame_of(a, "message_queued")
    created = await frame_of(b, "new_message")
    assert created["message"]["id"] == queued["id"]
    assert created["message"]["status"] == "pending" and created["message"]["body"] == "Olá!"
    await a.send_json_to(frame)  # a retried frame
    assert (await frame_of(a, "message_queued"))["id"] == queued["id"]
    count = await sync_to_async(Message.objects.filter(body="Olá!").count)()
    assert count == 1
    await a.disconnect()
    await b.disconnect()


async def test_send_message_answers_validation_errors(conversation, alice):
    a = await connect(alice)
    await a.send_json_to({"type": "send_message", "conversation_id": conversation.pk, "text": " "})
    error = await frame_of(a, "error")
    assert error["code"] == "empty" and error["message"]
    await a.send_json_to(
        {"type": "send_message", "conversation_id": conversation.pk, "text": "x" * 5000}
    )
    assert (await frame_of(a, "error"))["code"] == "too_long"
    await a.disconnect()


async def test_send_message_sends_a_location_or_a_contact_card(conversation, alice):
    a = await connect(alice)
    await a.send_json_to(
        {
            "type": "send_message",
            "conversation_id": conversation.pk,
            "location": {"latitude": -23.55, "longitude": -46.63, "name": "Sé"},
        }
    )
    queued = await frame_of(a, "message_queued")
    m = await sync_to_async(Message.objects.get)(pk=queued["id"])
    assert (m.kind, m.latitude, m.longitude, m.location_name) == ("location", -23.55, -46.63, "Sé")
    await a.send_json_to(
        {
            "type": "send_message",
            "conversation_id": conversation.pk,
            "contact": {"name": "Ana", "phone": "+55 11 97777-0001"},
        }
    )
    queued = await frame_of(a, "message_queued")
    m = await sync_to_async(Message.objects.get)(pk=queued["id"])
    assert m.kind == "contact" and "waid=5511977770001" in m.body
    for bad, code in (
        ({"location": {"latitude": "x", "longitude": 1}}, "invalid"),
        ({"location": {"latitude": 100, "longitude": 1}}, "invalid_coordinate"),
        ({"contact": "Ana"}, "invalid"),
        ({"contact": {"phone": "5511977770001"}}, "required"),
    ):
        await a.send_json_to({"type": "send_message", "conversation_id": conversation.pk, **bad})
        assert (await frame_of(a, "error"))["code"] == code, bad
    await a.disconnect()


async def test_send_message_keeps_to_the_send_rate(conversation, alice, settings):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 2
    a = await connect(alice)
    for i in range(2):
        await a.send_json_to(
            {"type": "send_message", "conversation_id": conversation.pk, "text": f"m{i}"}
        )
        await frame_of(a, "message_queued")
    await a.send_json_to({"type": "send_message", "conversation_id": conversation.pk, "text": "x"})
    assert (await frame_of(a, "error"))["code"] == "rate_limited"
    assert await sync_to_async(Message.objects.filter(body="x").exists)() is False
    await a.disconnect()


async def test_send_message_refuses_text_the_database_cannot_store(conversation, alice):
    a = await connect(alice)
    for text in ("a\x00b", "a\ud800b"):
        await a.send_json_to(
            {"type": "send_message", "conversation_id": conversation.pk, "text": text}
        )
        error = await frame_of(a, "error")
        assert error["code"] == "invalid" and error["message"]
    outbound = Message.objects.filter(direction=Message.Direction.OUTBOUND)
    assert await sync_to_async(outbound.exists)() is False
    await a.disconnect()


async def test_send_message_refuses_a_quote_from_another_conversation(number, conversation, alice):
    elsewhere = await receive(session=number, msg=inbound(phone="5511900000009", text="there"))
    a = await connect(alice)
    frame = {"type": "send_message", "conversation_id": conversation.pk, "text": "re"}
    await a.send_json_to({**frame, "reply_to_id": elsewhere.pk})
    error = await frame_of(a, "error")
    assert error == {
        "type": "error",
        "code": "invalid",
        "message": "No such message in this conversation.",
    }
    assert await sync_to_async(Message.objects.filter(body="re").exists)() is False
    await a.disconnect()


async def test_an_outsider_gets_an_error_and_nothing_else(conversation, charlie):
    c = await connect(charlie)
    for frame in (
        {"type": "join_conversation", "conversation_id": conversation.pk},
        {"type": "send_message", "conversation_id": conversation.pk, "text": "hi"},
        {"type": "mark_as_read", "conversation_id": conversation.pk},
    ):
        await c.send_json_to(frame)
        error = await c.receive_json_from(timeout=WAIT)
        assert error["type"] == "error" and error["code"] == "not_found"
    # and nothing of the conversation reaches them afterwards
    await receive(session=conversation.session, msg=inbound(text="secret"))
    message = await sync_to_async(Message.objects.filter(conversation=conversation).first)()
    await database_sync_to_async(services.message_media_failed)(message_id=message.pk, error="x")
    assert await c.receive_nothing(timeout=0.5)
    assert not await sync_to_async(Message.objects.filter(body="hi").exists)()
    await c.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"no": "type"}',
        '{"type": 5}',
        '{"type": "reboot"}',
        '{"type": "join_conversation"}',
        '{"type": "join_conversation", "conversation_id": "1"}',
        '{"type": "join_conversation", "conversation_id": true}',
        '{"type": "join_conversation", "conversation_id": -3}',
        '{"type": "send_message", "conversation_id": 1, "text": ["a"]}',
        '{"type": "send_message", "conversation_id": 1, "text": "a", "client_key": 7}',
        '{"type": "mark_as_read", "conversation_id": 1.5}',
        json.dumps({"type": "join", "pad": "x" * 40_000}),
        "[" * 1500,  # nested deeper than the decoder goes
        '{"type": "join", "x": ' + "[" * 1500 + "]" * 1500 + "}",
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(alice, raw):
    a = await connect(alice)
    await a.send_to(text_data=raw)
    error = await a.receive_json_from(timeout=WAIT)
    assert error["type"] == "error" and error["code"] and error["message"]
    await a.send_json_to({"type": "join"})
    assert (await a.receive_json_from(timeout=WAIT))["type"] == "joined"
    await a.disconnect()


async def test_a_binary_frame_gets_an_error(alice):
    a = await connect(alice)
    await a.send_to(bytes_data=b"\x00\x01")
    assert (await a.receive_json_from(timeout=WAIT))["code"] == "bad_frame"
    await a.disconnect()


# --- access changes while connected --------------------------------------------------------


async def test_sockets_join_and_leave_a_number_when_access_changes(number, charlie):
    c = await connect(charlie)
    await database_sync_to_async(wa_services.session_agent_add)(session=number, user=charlie)
    await c.send_json_to({"type": "join"})  # a round trip: the refresh ran before it
    assert number.pk in (await frame_of(c, "joined"))["session_ids"]
    await receive(session=number, msg=inbound(text="now you see it"))
    assert (await frame_of(c, "new_message"))["message"]["body"] == "now you see it"
    await database_sync_to_async(wa_services.session_agent_remove)(session=number, user=charlie)
    await c.send_json_to({"type": "join"})
    assert number.pk not in (await frame_of(c, "joined"))["session_ids"]
    await receive(session=number, msg=inbound(text="now you don't"))
    assert await c.receive_nothing(timeout=0.5)
    await c.disconnect()


async def test_a_new_number_s_events_reach_its_owner_s_open_socket(charlie):
    c = await connect(charlie)
    session = await database_sync_to_async(wa_services.session_create)(owner=charlie, name="Mine")
    assert (await frame_of(c, "session_status"))["session"]["id"] == session.pk
    await c.send_json_to({"type": "join"})  # a round trip: the refresh ran before it
    assert session.pk in (await frame_of(c, "joined"))["session_ids"]
    await receive(session=session, msg=inbound(text="first on the new number"))
    assert (await frame_of(c, "new_message"))["message"]["body"] == "first on the new number"
    await c.disconnect()


async def test_a_frame_forwarded_while_the_socket_connects_arrives_after_the_accept(alice):
    """The socket joins its groups before it accepts (so nothing committed after the page's
    sync is missed): a frame the hub forwards in between waits for the accept."""
    original = InboxConsumer._refresh_groups

    async def refresh_then_frame(self):
        joined = await original(self)
        await self.forward([{"en": '{"type": "early"}'}])
        return joined

    with mock.patch.object(InboxConsumer, "_refresh_groups", refresh_then_frame):
        a = await connect(alice)
    assert a.connected
    assert [f["type"] for f in await frames_from(a)] == ["early"]
    await a.disconnect()
