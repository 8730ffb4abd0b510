from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import services
from conversations.models import Conversation, Message
from tests.api.conftest import url
from tests.factories import inbound

pytestmark = pytest.mark.django_db


def _receive(number, n: int, *, phone: str = "5511988880001", when: datetime | None = None):
    for i in range(n):
        services.message_receive(
            session=number,
            msg=inbound(phone=phone, text=f"m{i}", timestamp=when or datetime.now(UTC)),
        )


# --- List -------------------------------------------------------------------------------


def test_owner_and_agent_list_the_conversation_and_an_outsider_sees_none(
    conversation, as_alice, as_bob, as_charlie
):
    for client in (as_alice, as_bob):
        body = client.get(url("/conversations")).json()
        assert [c["id"] for c in body["items"]] == [conversation.pk]
        assert body["items"][0]["contact"]["phone"] == "5511988880001"
        assert body["items"][0]["unread_count"] == 1
        assert body["next_cursor"] is None
    assert as_charlie.get(url("/conversations")).json() == {"items": [], "next_cursor": None}


def test_an_owner_id_in_the_query_changes_nothing(conversation, as_charlie, alice):
    response = as_charlie.get(url("/conversations"), {"owner_id": alice.pk})
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_the_cursor_walks_every_conversation_once(number, as_bob):
    same_time = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    for i in range(7):  # ties on last_message_at are broken by id
        _receive(number, 1, phone=f"55119888800{i:02d}", when=same_time)
    for i in range(6):
        _receive(number, 1, phone=f"55119777700{i:02d}", when=same_time + timedelta(minutes=i))
    expected = list(
        Conversation.objects.order_by("-last_message_at", "-pk").values_list("pk", flat=True)
    )
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        body = as_bob.get(url("/conversations"), params).json()
        seen += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(seen) == 13
    assert pages == 4


def test_a_forged_cursor_is_a_400_naming_the_field(conversation, as_alice):
    response = as_alice.get(url("/conversations"), {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"][0]["field"] == "cursor"


def test_filters(number, alice, bob, as_alice):
    _receive(number, 1, phone="5511900000001")
    _receive(number, 1, phone="5511900000002")
    _receive(number, 1, phone="5511900000003")
    first, second, third = Conversation.objects.order_by("pk")
    services.conversation_assign(conversation=first, assignee=alice)
    services.conversation_assign(conversation=second, assignee=bob)
    services.conversation_set_status(conversation=third, status="closed")

    def ids(**params) -> set[int]:
        response = as_alice.get(url("/conversations"), params)
        assert response.status_code == 200, response.content
        return {c["id"] for c in response.json()["items"]}

    assert ids(assigned="mine") == {first.pk}
    assert ids(assigned="unassigned") == {third.pk}
    assert ids(status="closed") == {third.pk}
    assert ids(number=number.pk) == {first.pk, second.pk, third.pk}
    assert ids(number=number.pk + 1) == set()
    assert ids(search="900000002") == {second.pk}
    assert as_alice.get(url("/conversations"), {"status": "nope"}).status_code == 400


def test_the_list_costs_the_same_queries_for_many_rows(
    number, bob, client, django_assert_num_queries
):
    client.force_login(bob)
    _receive(number, 1, phone="5511900000001")
    with django_assert_num_queries(3):  # session, user, conversations
        assert len(client.get(url("/conversations")).json()["items"]) == 1
    for i in range(10):
        _receive(number, 1, phone=f"55119000001{i:02d}")
    with django_assert_num_queries(3):
        assert len(client.get(url("/conversations")).json()["items"]) == 11


def test_one_conversation(conversation, as_bob, as_charlie):
    response = as_bob.get(url(f"/conversations/{conversation.pk}"))
    assert response.status_code == 200
    assert response.json()["id"] == conversation.pk
    response = as_charlie.get(url(f"/conversations/{conversation.pk}"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert as_bob.get(url("/conversations/999999")).status_code == 404


# --- Messages -------------------------------------------------------------------------------


def test_messages_newest_first_and_paged_back_by_id(number, conversation, as_bob):
    _receive(number, 11)
    all_ids = list(Message.objects.order_by("-pk").values_list("pk", flat=True))
    seen, before = [], None
    while True:
        params = {"limit": 5, **({"before": before} if before else {})}
        response = as_bob.get(url(f"/conversations/{conversation.pk}/messages"), params)
        assert response.status_code == 200
        body = response.json()
        seen += [m["id"] for m in body["items"]]
        before = body["next_before"]
        if before is None:
            break
    assert seen == all_ids and len(seen) == 12


def test_a_message_carries_kind_status_direction_and_a_protected_media_url(
    number, conversation, as_bob, as_charlie
):
    message = Message.objects.get()
    message.media.save("photo.png", ContentFile(b"\x89PNG fake"), save=False)
    message.media_status = Message.MediaStatus.READY
    message.mime_type = "image/png"
    message.kind = Message.Kind.IMAGE
    message.save()
    item = as_bob.get(url(f"/conversations/{conversation.pk}/messages")).json()["items"][0]
    assert item["kind"] == "image"
    assert item["direction"] == "CLIENTE"
    assert item["status"] == "received"
    assert item["mime_type"] == "image/png"
    assert item["media_url"] == f"/api/whatsapp/messages/{message.pk}/media"
    response = as_bob.get(item["media_url"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert as_charlie.get(item["media_url"]).status_code == 404
    assert as_bob.get(url("/messages/999999/media")).status_code == 404


def test_a_message_without_a_file_has_no_media(conversation, as_bob):
    message = Message.objects.get()
    assert as_bob.get(url(f"/messages/{message.pk}/media")).status_code == 404
    item = as_bob.get(url(f"/conversations/{conversation.pk}/messages")).json()["items"][0]
    assert item["media_url"] is None


def test_the_page_size_is_capped_at_100(number, conversation, as_bob):
    history = [inbound(text=f"h{i}") for i in range(120)]
    services.history_import(session=number, messages=history)
    body = as_bob.get(url(f"/conversations/{conversation.pk}/messages"), {"limit": 500}).json()
    assert len(body["items"]) == 100
    assert body["next_before"] is not None


def test_a_page_of_messages_costs_the_same_queries_whatever_it_quotes_or_who_sent_it(
    conversation, bob, client, django_assert_num_queries
):
    client.force_login(bob)
    messages = url(f"/conversations/{conversation.pk}/messages")
    with django_assert_num_queries(4):  # session, user, conversation, messages
        assert len(client.get(messages).json()["items"]) == 1
    first = Message.objects.get()
    for i in range(5):
        services.message_queue_outbound(
            user=bob, conversation=conversation, text=f"re {i}", reply_to=first
        )
    with django_assert_num_queries(4):
        items = client.get(messages).json()["items"]
    assert [(m["sent_by_id"], m["reply_to_id"]) for m in items[:5]] == [(bob.pk, first.pk)] * 5


def test_an_outsider_cannot_read_the_messages(conversation, as_charlie):
    response = as_charlie.get(url(f"/conversations/{conversation.pk}/messages"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# --- Read ----------------------------------------------------------------------------------


def test_marking_read_clears_unread_and_queues_the_receipt(conversation, as_bob, as_charlie):
    assert as_charlie.put(url(f"/conversations/{conversation.pk}/read")).status_code == 404
    response = as_bob.put(url(f"/conversations/{conversation.pk}/read"))
    assert response.status_code == 200
    assert response.json()["marked"] == 1
    assert response.json()["conversation"]["unread_count"] == 0
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    assert Message.objects.get().receipt_pending


# --- Send ------------------------------------------------------------------------------------


def test_sending_text_queues_a_pending_message(conversation, bob, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "Olá!"},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["direction"] == "ATENDENTE"
    message = Message.objects.get(pk=body["id"])
    assert message.body == "Olá!" and message.sent_by == bob


def test_the_same_idempotency_key_sends_once(conversation, as_bob):
    send = url(f"/conversations/{conversation.pk}/send")
    headers = {"Idempotency-Key": "retry-42"}
    first = as_bob.post(send, {"text": "once"}, content_type="application/json", headers=headers)
    second = as_bob.post(send, {"text": "once"}, content_type="application/json", headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Message.objects.filter(body="once").count() == 1
    other = as_bob.post(
        send, {"text": "once"}, content_type="application/json", headers={"Idempotency-Key": "x"}
    )
    assert other.json()["id"] != first.json()["id"]


def test_an_idempotency_key_over_64_characters_is_refused(conversation, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "hi"},
        content_type="application/json",
        headers={"Idempotency-Key": "k" * 65},
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "Idempotency-Key"


def test_sending_a_file_with_a_caption(conversation, as_bob):
    upload = SimpleUploadedFile("doc.pdf", b"%PDF-1.4 fake", content_type="application/pdf")
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"), {"text": "the invoice", "file": upload}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "document" and body["body"] == "the invoice"
    assert body["file_name"] == "doc.pdf"
    assert body["media_url"] == f"/api/whatsapp/messages/{body['id']}/media"
    assert b"".join(as_bob.get(body["media_url"]).streaming_content) == b"%PDF-1.4 fake"
    # kept as MEDIA_ROOT/YYYY/MM/<name>, one folder level like received files
    stored = Message.objects.get(pk=body["id"]).media.name
    assert re.fullmatch(r"\d{4}/\d{2}/doc[^/]*\.pdf", stored), stored


def test_an_empty_message_is_a_400_naming_the_text_field(conversation, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "  "},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": [
            {"field": "text", "message": response.json()["detail"][0]["message"], "code": "empty"}
        ],
    }


def test_a_wrongly_typed_field_is_a_400_naming_it(conversation, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": 5, "reply_to_id": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert {d["field"] for d in response.json()["detail"]} == {"text", "reply_to_id"}


def test_text_with_a_nul_character_is_refused_before_the_database(conversation, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "a\x00b"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "text"


def test_an_unknown_kind_is_a_422(conversation, as_bob):
    upload = SimpleUploadedFile("a.bin", b"x", content_type="application/octet-stream")
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"), {"file": upload, "kind": "hologram"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_kind"
    assert response.json()["detail"][0]["field"] == "kind"
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


def test_a_file_over_the_upload_limit_is_a_413(conversation, as_bob, settings):
    settings.VBCRM_MAX_UPLOAD_BYTES = 10
    upload = SimpleUploadedFile("big.pdf", b"x" * 11, content_type="application/pdf")
    response = as_bob.post(url(f"/conversations/{conversation.pk}/send"), {"file": upload})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert response.json()["detail"][0]["field"] == "file"


def test_a_json_body_over_the_data_limit_is_a_413(conversation, as_bob, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "x" * 2000},
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_a_body_announced_too_large_is_refused_unread(conversation, as_bob, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = as_bob.generic(
        "POST",
        url(f"/conversations/{conversation.pk}/send"),
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH="5000",
    )
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": "The request body is too large."}


def test_an_unsupported_body_type_is_a_415(conversation, as_bob):
    response = as_bob.post(
        url(f"/conversations/{conversation.pk}/send"), "text=hi", content_type="text/plain"
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_sending_is_rate_limited_per_user_with_retry_after(
    conversation, as_bob, as_alice, settings
):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 2
    send = url(f"/conversations/{conversation.pk}/send")
    for text in ("one", "two"):
        assert as_bob.post(send, {"text": text}, content_type="application/json").status_code == 201
    response = as_bob.post(send, {"text": "three"}, content_type="application/json")
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not Message.objects.filter(body="three").exists()
    # The limit is per user: alice still may send.
    assert as_alice.post(send, {"text": "a"}, content_type="application/json").status_code == 201


def test_quoting_a_message_of_another_conversation_is_refused(number, conversation, as_bob):
    _receive(number, 1, phone="5511900000009")
    elsewhere = Message.objects.exclude(conversation=conversation).get()
    send = url(f"/conversations/{conversation.pk}/send")
    response = as_bob.post(
        send, {"text": "re", "reply_to_id": elsewhere.pk}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "reply_to_id"
    own = Message.objects.get(conversation=conversation)
    response = as_bob.post(
        send, {"text": "re", "reply_to_id": own.pk}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["reply_to_id"] == own.pk


def test_an_outsider_cannot_send(conversation, as_charlie):
    response = as_charlie.post(
        url(f"/conversations/{conversation.pk}/send"),
        {"text": "hi"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert not Message.objects.filter(body="hi").exists()


# --- Actions -----------------------------------------------------------------------------------


def test_assign_to_me_to_an_agent_and_unassign(conversation, alice, bob, as_alice):
    assign = url(f"/conversations/{conversation.pk}/assign")
    response = as_alice.post(assign, {"user_id": "me"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["assigned_to_id"] == alice.pk
    response = as_alice.post(assign, {"user_id": bob.pk}, content_type="application/json")
    assert response.json()["assigned_to_id"] == bob.pk
    conversation.refresh_from_db()
    assert conversation.assigned_to == bob
    response = as_alice.post(assign, {"user_id": None}, content_type="application/json")
    assert response.json()["assigned_to_id"] is None


def test_assigning_someone_outside_the_number_is_a_400(conversation, charlie, as_alice, as_charlie):
    assign = url(f"/conversations/{conversation.pk}/assign")
    response = as_alice.post(assign, {"user_id": charlie.pk}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "user_id"
    response = as_charlie.post(assign, {"user_id": "me"}, content_type="application/json")
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.assigned_to is None


def test_close_and_reopen(conversation, as_bob, as_charlie):
    response = as_bob.post(url(f"/conversations/{conversation.pk}/close"))
    assert response.status_code == 200 and response.json()["status"] == "closed"
    conversation.refresh_from_db()
    assert conversation.status == "closed"
    assert as_charlie.post(url(f"/conversations/{conversation.pk}/reopen")).status_code == 404
    response = as_bob.post(url(f"/conversations/{conversation.pk}/reopen"))
    assert response.json()["status"] == "open"
    conversation.refresh_from_db()
    assert conversation.status == "open"
