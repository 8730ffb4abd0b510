"""The inbox pages and the endpoints their script calls: access, actions, sync, queries."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message, QuickReply
from tests.factories import inbound
from whatsapp.gateway.base import MessageKind

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _as(client: Client, user) -> Client:
    client.force_login(user)
    return client


def _many(number, n: int, *, start: int = 0) -> None:
    """``n`` conversations, each with a few messages and every join the rows show."""
    for i in range(start, start + n):
        m = services.message_receive(
            session=number, msg=inbound(phone=f"55119{i:08d}", text=f"m{i}", push_name=f"C{i}")
        )
        if i % 2:
            services.conversation_assign(conversation=m.conversation, assignee=number.owner)


# --- query counts -------------------------------------------------------------------------


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_list_page_runs_the_same_queries_for_3_or_30_rows(
    client, number, alice, django_assert_num_queries
):
    _as(client, alice)
    _many(number, 3)
    client.get("/")  # warm the session and content types
    few = _count(client, "/")
    _many(number, 27, start=3)
    with django_assert_num_queries(few):
        response = client.get("/")
    assert response.content.decode().count('class="conversation-row') == 30
    # and pinned: session, user (with the header's availability), numbers, unread counts,
    # mentions, queues, the page of rows, their tags and their contacts' (one query), the
    # tags of the filter
    assert few == 9


def test_the_thread_page_runs_the_same_queries_for_3_or_30_messages(
    client, number, alice, bob, conversation, django_assert_num_queries
):
    _as(client, alice)
    url = f"/conversations/{conversation.pk}/"
    first = Message.objects.get()

    def add(n: int) -> None:
        for i in range(n):
            if i % 3 == 0:
                services.message_queue_outbound(user=bob, conversation=conversation, text=f"r{i}")
            else:
                services.message_receive(
                    session=number, msg=inbound(text=f"q{i}", quoted_id=first.wa_id)
                )

    add(2)
    client.get(url)
    few = _count(client, url)
    add(27)
    with django_assert_num_queries(few):
        response = client.get(url)
    assert response.content.decode().count('class="msg ') == 30
    # session, user (with the header's availability), numbers, unread, mentions, queues,
    # rows, the tags of the rows and of the open conversation and of their contacts (one
    # query), the tags the user may use, conversation, messages, members, the number's
    # queues, system lines, quick replies
    assert few == 15


# --- pages and access -----------------------------------------------------------------------


def test_an_outsider_gets_404_everywhere(client, conversation, charlie):
    _as(client, charlie)
    message = conversation.messages.get()
    pk = conversation.pk
    for url in (
        f"/conversations/{pk}/",
        f"/conversations/{pk}/header/",
        f"/conversations/{pk}/messages/?before=999",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/conversations/{pk}/send/",
        f"/conversations/{pk}/read/",
        f"/conversations/{pk}/assign/",
        f"/conversations/{pk}/status/",
        f"/conversations/{pk}/contact/",
        f"/conversations/messages/{message.pk}/retry/",
    ):
        assert client.post(url, {"text": "x", "status": "closed"}).status_code == 404, url
    assert not Message.objects.filter(body="x").exists()
    body = client.get("/conversations/sync/", {"since": timezone.now().isoformat()}).json()
    assert body["conversations"] == [] and body["unread"] == {}


def test_pages_need_a_login(client, conversation):
    for url in ("/", f"/conversations/{conversation.pk}/", "/numbers/", "/conversations/sync/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_thread_page_shows_every_kind_escaped(client, number, alice):
    to = {"phone": "5511988880009"}
    services.message_receive(session=number, msg=inbound(**to, text="<script>alert(1)</script>"))
    services.message_receive(
        session=number,
        msg=inbound(
            **to,
            kind=MessageKind.LOCATION,
            text="",
            latitude=-23.5505,
            longitude=-46.6333,
            location_name="Sé",
        ),
    )
    services.message_receive(
        session=number,
        msg=inbound(
            **to, kind=MessageKind.CONTACT, text="BEGIN:VCARD\nFN:João\nTEL:+5511\nEND:VCARD"
        ),
    )
    services.message_receive(
        session=number,
        msg=inbound(**to, kind=MessageKind.DOCUMENT, text="", filename="nota.pdf", media_ref=b"r"),
    )
    conversation = Conversation.objects.get()
    _as(client, alice)
    body = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert "https://www.openstreetmap.org/?mlat=-23.550500&amp;mlon=-46.633300" in body
    assert "-23.55050, -46.63330" in body
    assert "João" in body and "+5511" in body
    assert '<span class="preview">📄 nota.pdf</span>' in body
    contact_card = conversation.messages.get(kind="contact")
    assert services.message_preview(contact_card.kind, contact_card.body) == "👤 João"
    assert "media-wait" in body  # the document is still downloading


def test_htmx_gets_the_thread_and_the_contact_panel(client, conversation, bob):
    _as(client, bob)
    response = client.get(f"/conversations/{conversation.pk}/", **HTMX)
    body = response.content.decode()
    assert 'id="thread-wrap"' in body and 'hx-swap-oob="innerHTML"' in body
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_filters_and_search(client, number, alice, bob):
    _many(number, 4)  # odd ones are assigned to alice
    services.message_receive(session=number, msg=inbound(phone="5511977776666", text="boleto"))
    services.conversation_set_status(
        conversation=Conversation.objects.get(contact__phone="5511977776666"), status="pending"
    )
    _as(client, alice)

    def names(**params) -> int:
        return client.get("/", params).content.decode().count('class="conversation-row')

    assert names() == 5
    assert names(scope="mine") == 2
    assert names(scope="unassigned") == 3
    assert names(status="pending") == 1
    assert names(q="boleto") == 1  # message text
    assert names(q="C2") == 1  # contact name
    assert names(q="9777766") == 1  # phone
    assert names(number=number.pk) == 5 and names(number=999) == 0
    partial = client.get("/", {"scope": "mine"}, HTTP_HX_TARGET="conversation-list", **HTMX)
    assert partial.content.decode().startswith('<ul class="conversations" id="conversation-list"')
    # the filters also ask an open conversation's page for the list
    conversation = Conversation.objects.first()
    partial = client.get(
        f"/conversations/{conversation.pk}/",
        {"status": "pending"},
        HTTP_HX_TARGET="conversation-list",
        **HTMX,
    ).content.decode()
    assert (
        partial.startswith('<ul class="conversations"') and partial.count("conversation-row") == 1
    )


def test_the_list_pages_by_cursor(client, number, alice, monkeypatch):
    monkeypatch.setattr("conversations.views.LIST_PAGE", 2)
    _many(number, 5)
    _as(client, alice)
    body = client.get("/").content.decode()
    assert body.count('class="conversation-row') == 2 and 'class="more"' in body
    rows = list(Conversation.objects.order_by("-last_message_at", "-pk"))
    more = client.get(
        "/conversations/rows/",
        {"before_at": rows[1].last_message_at.isoformat(), "before_id": rows[1].pk},
    ).content.decode()
    assert (
        f'id="conversation-{rows[2].pk}"' in more and f'id="conversation-{rows[1].pk}"' not in more
    )


def test_older_messages_page_by_id(client, conversation, number, alice, monkeypatch):
    monkeypatch.setattr("conversations.views.THREAD_PAGE", 3)
    for i in range(6):
        services.message_receive(session=number, msg=inbound(text=f"n{i}"))
    ids = list(conversation.messages.order_by("pk").values_list("pk", flat=True))
    _as(client, alice)
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert [f'id="message-{i}"' in page for i in ids] == [False] * 4 + [True] * 3
    older = client.get(f"/conversations/{conversation.pk}/messages/", {"before": ids[4]})
    body = older.content.decode()
    assert [f'id="message-{i}"' in body for i in ids] == [
        False,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert f'data-before="{ids[1]}"' in body  # one more page to go


# --- actions -----------------------------------------------------------------------------------


def test_sending_answers_the_pending_message(client, conversation, bob):
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/send/"
    response = client.post(url, {"text": "Bom dia", "client_key": "k1"})
    assert response.status_code == 201
    data = response.json()["message"]
    assert data["status"] == "pending" and data["body"] == "Bom dia"
    assert 'data-status="pending"' in data["html"] and "🕓" in data["html"]
    # the same key again (a double Enter, a retried request) sends nothing new
    assert (
        client.post(url, {"text": "Bom dia", "client_key": "k1"}).json()["message"]["id"]
        == data["id"]
    )
    assert Message.objects.filter(body="Bom dia").count() == 1


def test_sending_keeps_to_the_send_rate(client, conversation, bob, settings):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 1
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/send/"
    assert client.post(url, {"text": "one"}).status_code == 201
    response = client.post(url, {"text": "two"})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response.json()["error"]["message"]
    assert not Message.objects.filter(body="two").exists()


def test_sending_refuses_text_the_database_cannot_store(client, conversation, bob):
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/send/"
    # (A form cannot carry a lone surrogate: UTF-8 cannot encode one.)
    response = client.post(url, {"text": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


def test_sending_refuses_a_quote_from_another_conversation(client, number, conversation, bob):
    elsewhere = services.message_receive(
        session=number, msg=inbound(phone="5511900000009", text="elsewhere")
    )
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/send/"
    response = client.post(url, {"text": "re", "reply_to": elsewhere.pk})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "No such message in this conversation.",
    }
    assert not Message.objects.filter(body="re").exists()
    own = conversation.messages.get()
    response = client.post(url, {"text": "re", "reply_to": own.pk})
    assert response.status_code == 201
    assert Message.objects.get(body="re").reply_to == own


def test_sending_a_file(client, conversation, bob, settings):
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/send/"
    png = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 10, content_type="image/png")
    data = client.post(url, {"text": "foto", "file": png}).json()["message"]
    assert data["kind"] == "image" and data["media_url"]
    settings.VBCRM_MAX_UPLOAD_BYTES = 1024
    big = SimpleUploadedFile("b.pdf", b"0" * 2048, content_type="application/pdf")
    response = client.post(url, {"file": big})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_large"
    empty = client.post(url, {"text": "  "})
    assert empty.status_code == 400 and empty.json()["error"]["message"]


def test_posts_need_the_csrf_token(conversation, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(f"/conversations/{conversation.pk}/send/", {"text": "x"}).status_code == 403
    client.get("/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/conversations/{conversation.pk}/send/", {"text": "x"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_mark_read(client, conversation, bob):
    _as(client, bob)
    assert client.post(f"/conversations/{conversation.pk}/read/").json() == {"count": 1}
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_assign_transfer_and_unassign(client, conversation, alice, bob, charlie):
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/assign/"
    response = client.post(url, {"assignee": "me"}, **HTMX)
    assert response.status_code == 200 and 'id="thread-header"' in response.content.decode()
    assert "vb:toast" in response["HX-Trigger"]
    conversation.refresh_from_db()
    assert conversation.assigned_to == bob
    client.post(url, {"assignee": str(alice.pk)}, **HTMX)
    conversation.refresh_from_db()
    assert conversation.assigned_to == alice
    refused = client.post(url, {"assignee": str(charlie.pk)}, **HTMX)
    assert refused.status_code == 400 and "error" in refused["HX-Trigger"]
    conversation.refresh_from_db()
    assert conversation.assigned_to == alice
    client.post(url, {"assignee": ""}, **HTMX)
    conversation.refresh_from_db()
    assert conversation.assigned_to is None
    # without htmx: a redirect back with a message
    plain = client.post(url, {"assignee": "me"})
    assert plain.status_code == 302 and plain["Location"] == f"/conversations/{conversation.pk}/"


def test_status_actions(client, conversation, bob):
    _as(client, bob)
    url = f"/conversations/{conversation.pk}/status/"
    for status in ("pending", "closed", "open"):
        assert client.post(url, {"status": status}, **HTMX).status_code == 200
        conversation.refresh_from_db()
        assert conversation.status == status
    assert client.post(url, {"status": "deleted"}, **HTMX).status_code == 400


def test_the_contact_panel_saves_name_and_notes(client, conversation, bob):
    _as(client, bob)
    response = client.post(
        f"/conversations/{conversation.pk}/contact/",
        {"saved_name": "  Maria   Silva ", "notes": "<b>VIP</b>"},
        **HTMX,
    )
    body = response.content.decode()
    assert "Maria Silva" in body and "&lt;b&gt;VIP&lt;/b&gt;" in body
    conversation.contact.refresh_from_db()
    assert conversation.contact.saved_name == "Maria Silva"
    assert conversation.contact.notes == "<b>VIP</b>"


def test_retry_puts_a_failed_reply_back_in_the_outbox(client, conversation, bob):
    message = services.message_queue_outbound(user=bob, conversation=conversation, text="x")
    _as(client, bob)
    url = f"/conversations/messages/{message.pk}/retry/"
    assert client.post(url).status_code == 400  # not failed
    services.outbox_failed(message_id=message.pk, error="number blocked", transient=False)
    message.refresh_from_db()
    assert message.status == "failed"
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "number blocked" in page and 'class="retry' in page
    data = client.post(url).json()["message"]
    assert data["status"] == "pending"


# --- the catch-up after a reconnect ------------------------------------------------------------


def test_sync_returns_what_changed_since(client, number, conversation, alice, bob):
    _as(client, alice)
    shown = conversation.messages.get()
    reply = services.message_queue_outbound(user=bob, conversation=conversation, text="r")
    since = timezone.now()
    other = services.message_receive(
        session=number, msg=inbound(phone="5511911112222")
    ).conversation
    new = services.message_receive(session=number, msg=inbound(text="while away"))
    services.outbox_sent(message_id=reply.pk, wa_id=reply.wa_id, timestamp=timezone.now())
    body = client.get(
        "/conversations/sync/",
        {"since": since.isoformat(), "conversation": conversation.pk, "after_id": reply.pk},
    ).json()
    assert {c["data"]["id"] for c in body["conversations"]} == {conversation.pk, other.pk}
    assert [m["id"] for m in body["messages"]] == [new.pk]
    assert [m["id"] for m in body["changed"]] == [reply.pk]
    assert 'data-status="sent"' in body["changed"][0]["html"]
    assert body["unread"] == {str(conversation.pk): 2, str(other.pk): 1}
    assert shown.pk not in [m["id"] for m in body["messages"] + body["changed"]]
    assert datetime.fromisoformat(body["since"]) < timezone.now() - timedelta(seconds=5)


def test_sync_refuses_a_missing_since_and_hides_others_conversations(client, conversation, charlie):
    _as(client, charlie)
    assert client.get("/conversations/sync/").status_code == 400
    assert client.get("/conversations/sync/", {"since": "2024-01-01T00:00:00"}).status_code == 400
    body = client.get(
        "/conversations/sync/",
        {"since": "2024-01-01T00:00:00+00:00", "conversation": conversation.pk, "after_id": 0},
    ).json()
    assert body["conversation_gone"] is True and body["messages"] == []


# --- quick replies -----------------------------------------------------------------------------


def test_quick_replies_are_managed_by_their_owner(client, alice, bob):
    _as(client, alice)
    response = client.post("/conversations/templates/", {"shortcut": "/Oi", "text": "Olá!"})
    assert response.status_code == 302
    reply = QuickReply.objects.get()
    assert (reply.shortcut, reply.text, reply.owner) == ("oi", "Olá!", alice)
    duplicate = client.post("/conversations/templates/", {"shortcut": "oi", "text": "x"})
    assert duplicate.status_code == 400 and "already have" in duplicate.content.decode()
    # the old address of the page leads to the new one
    assert client.get("/conversations/quick-replies/")["Location"] == "/conversations/templates/"
    bad = client.post("/conversations/templates/", {"shortcut": "a b", "text": "x"})
    assert bad.status_code == 400
    client.post(f"/conversations/templates/{reply.pk}/", {"shortcut": "ola", "text": "Oi!"})
    reply.refresh_from_db()
    assert reply.shortcut == "ola"
    _as(client, bob)
    assert client.post(f"/conversations/templates/{reply.pk}/delete/").status_code == 404
    assert 'value="ola"' not in client.get("/conversations/templates/").content.decode()
    _as(client, alice)
    client.post(f"/conversations/templates/{reply.pk}/delete/")
    assert not QuickReply.objects.exists()


def test_the_composer_gets_the_user_s_quick_replies(client, conversation, alice):
    services.quick_reply_create(owner=alice, shortcut="pix", text="Nossa chave PIX é <x>")
    _as(client, alice)
    body = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert 'id="vb-quick-replies"' in body and "\\u003Cx\\u003E" in body


# --- language ----------------------------------------------------------------------------------


def test_portuguese_is_the_default_and_english_can_be_chosen(client, alice, settings):
    settings.LANGUAGE_CODE = "pt-br"
    _as(client, alice)
    assert "Caixa de entrada" in client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    body = client.get("/").content.decode()
    assert "Inbox" in body and "Caixa de entrada" not in body
    assert '"reconnecting": "Connection lost. Reconnecting' in body  # the script's strings
