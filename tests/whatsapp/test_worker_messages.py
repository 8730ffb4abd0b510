"""The worker end to end, messages: every kind in, replies out, receipts, history, media.

Simulator network -> child process -> worker -> database, and back."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from conversations import services as conv_services
from conversations.models import Contact, Conversation, Message
from tests.whatsapp.conftest import PNG, link, running_worker, wait_for
from whatsapp.media_names import received_media_name
from whatsapp.models import WhatsAppSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


async def test_every_kind_arrives_once_and_media_is_stored(simulator, linked):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        to = {"to": "5511900000001", "from": "5511988880001", "push_name": "Maria"}
        bodies = [
            {"kind": "text", "text": "Olá"},
            {
                "kind": "image",
                "text": "foto",
                "media_base64": base64.b64encode(PNG).decode(),
                "mimetype": "image/png",
            },
            {"kind": "video"},
            {"kind": "audio"},
            {"kind": "voice"},
            {"kind": "document", "filename": "nota.pdf"},
            {"kind": "sticker"},
            {"kind": "location", "latitude": -23.55, "longitude": -46.63, "location_name": "Sé"},
            {"kind": "contact", "display_name": "João", "vcard": "BEGIN:VCARD\nFN:João\nEND:VCARD"},
        ]
        ids = [await asyncio.to_thread(c.send_message, **to, **b) for b in bodies]
        await wait_for(lambda: Message.objects.count() == len(bodies), what="all kinds")
        await wait_for(
            lambda: not Message.objects.filter(media_status="downloading").exists(),
            what="media downloads",
        )
        # a replayed id adds nothing
        await asyncio.to_thread(
            c.post, "/api/replay", {"phone": "5511900000001", "message_id": ids[0]}
        )
        await asyncio.to_thread(c.send_message, **to, kind="text", text="after replay")
        await wait_for(lambda: Message.objects.filter(body="after replay").exists())

    def check() -> None:
        assert Message.objects.count() == len(bodies) + 1
        # each file under MEDIA_ROOT/YYYY/MM/ (one "media" level), with its type's extension
        month = f"{timezone.now():%Y/%m}"
        names = dict(Message.objects.exclude(media="").values_list("wa_id", "media"))
        expected = {1: ".png", 2: ".mp4", 3: ".wav", 4: ".ogg", 5: ".pdf", 6: ".webp"}
        for index, ext in expected.items():
            message = Message.objects.get(wa_id=ids[index])
            assert names[ids[index]] == f"{month}/in-{message.pk}{ext}"
            assert message.media.path == os.path.join(
                settings.MEDIA_ROOT, month, f"in-{message.pk}{ext}"
            )
        assert Message.objects.filter(wa_id=ids[0]).count() == 1
        kinds = dict(Message.objects.values_list("wa_id", "kind"))
        assert [kinds[i] for i in ids] == [b["kind"] for b in bodies]
        image = Message.objects.get(wa_id=ids[1])
        assert image.media_status == "ready" and image.body == "foto"
        with image.media.open("rb") as f:
            assert f.read() == PNG
        for m in Message.objects.filter(
            kind__in=["video", "audio", "voice", "document", "sticker"]
        ):
            assert m.media_status == "ready" and m.file_size and m.media.size == m.file_size
        assert Message.objects.get(wa_id=ids[5]).file_name == "nota.pdf"
        loc = Message.objects.get(wa_id=ids[7])
        assert (loc.latitude, loc.longitude) == (-23.55, -46.63)
        assert "João" in Message.objects.get(wa_id=ids[8]).body
        conv = Conversation.objects.get()
        assert conv.unread_count == len(bodies) + 1
        assert conv.contact.push_name == "Maria"

    await sync_to_async(check)()


async def test_many_first_messages_from_one_contact_make_one_conversation(simulator, linked):
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        batch = [
            {"to": "5511900000001", "from": "5511988880001", "text": f"m{i}"} for i in range(200)
        ]
        await asyncio.to_thread(simulator.control.post, "/api/messages", batch)
        await wait_for(lambda: Message.objects.count() == 200, what="200 messages", timeout=60)
    assert await sync_to_async(Conversation.objects.count)() == 1
    assert await sync_to_async(Contact.objects.count)() == 1


async def test_group_and_lid_messages(simulator, linked):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            c.send_message,
            to="5511900000001",
            **{"from": "5511977770001"},
            push_name="Ana",
            group={"jid": "120363000000000001@g.us"},
            text="no grupo",
        )
        await asyncio.to_thread(
            c.send_message,
            to="5511900000001",
            lid="111222333@lid",
            **{"from": "5511988880001"},
            text="by lid",
        )
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="by phone"
        )
        await wait_for(lambda: Message.objects.count() == 3)

    def check() -> None:
        group_msg = Message.objects.get(body="no grupo")
        assert group_msg.sender_name == "Ana" and group_msg.conversation.contact.is_group
        assert Conversation.objects.count() == 2  # the group, and one for the person
        person = Contact.objects.get(is_group=False)
        assert person.lid == "111222333@lid" and person.phone == "5511988880001"

    await sync_to_async(check)()


async def test_replies_go_out_once_in_order_and_get_ticks(simulator, linked, alice):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="oi"
        )
        await wait_for(lambda: Conversation.objects.exists())
        conv = await sync_to_async(Conversation.objects.select_related("session", "contact").get)()
        queued = []
        for i in range(5):
            m = await sync_to_async(conv_services.message_queue_outbound)(
                user=alice, conversation=conv, text=f"reply {i}"
            )
            queued.append(m.wa_id)
        sent = await wait_for(
            lambda: len(c.sent("5511900000001")) == 5 and c.sent("5511900000001"), what="5 sent"
        )
        assert [s["text"] for s in sent] == [f"reply {i}" for i in range(5)]
        assert [s["message_id"] for s in sent] == queued
        await wait_for(lambda: Message.objects.filter(status="sent").count() == 5)
        await asyncio.to_thread(
            c.post,
            "/api/receipts",
            {
                "phone": "5511900000001",
                "message_ids": queued[:3],
                "status": "delivered",
                "from": "5511988880001",
            },
        )
        await wait_for(lambda: Message.objects.filter(status="delivered").count() == 3)
        await asyncio.to_thread(
            c.post,
            "/api/receipts",
            {
                "phone": "5511900000001",
                "message_ids": queued[:2],
                "status": "read",
                "from": "5511988880001",
            },
        )
        await wait_for(lambda: Message.objects.filter(status="read").count() == 2)
        # a late "delivered" never moves a read message back
        await asyncio.to_thread(
            c.post,
            "/api/receipts",
            {
                "phone": "5511900000001",
                "message_ids": queued[:1],
                "status": "delivered",
                "from": "5511988880001",
            },
        )
        await asyncio.sleep(0.5)
        assert await sync_to_async(Message.objects.filter(status="read").count)() == 2
    assert len(c.sent("5511900000001")) == 5


async def test_a_media_reply_goes_out_with_its_bytes(simulator, linked, alice):
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="oi"
        )
        await wait_for(lambda: Conversation.objects.exists())
        conv = await sync_to_async(Conversation.objects.select_related("session", "contact").get)()
        await sync_to_async(conv_services.message_queue_outbound)(
            user=alice,
            conversation=conv,
            text="veja",
            upload=SimpleUploadedFile("p.png", PNG, content_type="image/png"),
        )
        sent = await wait_for(lambda: c.sent("5511900000001"), what="media sent")
    assert sent[0]["kind"] == "image" and sent[0]["text"] == "veja"
    assert sent[0]["sha256"] == hashlib.sha256(PNG).hexdigest()


async def test_reading_a_conversation_sends_a_read_receipt(simulator, linked, bob):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        mid = await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="oi"
        )
        await wait_for(lambda: Conversation.objects.exists())
        conv = await sync_to_async(Conversation.objects.select_related("session").get)()
        await sync_to_async(conv_services.conversation_mark_read)(conversation=conv, user=bob)
        reads = await wait_for(
            lambda: c.get("/api/reads", phone="5511900000001"), what="read receipt"
        )
    assert reads[0]["message_ids"] == [mid]
    assert not await sync_to_async(Message.objects.filter(receipt_pending=True).exists)()


async def test_pending_replies_wait_for_a_worker(simulator, linked, alice):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="oi"
        )
        await wait_for(lambda: Conversation.objects.exists())
    conv = await sync_to_async(Conversation.objects.select_related("session", "contact").get)()
    await sync_to_async(conv_services.message_queue_outbound)(
        user=alice, conversation=conv, text="later"
    )
    await asyncio.sleep(0.3)
    assert c.sent("5511900000001") == []
    async with running_worker():
        await wait_for(lambda: len(c.sent("5511900000001")) == 1, what="sent on claim")


async def test_history_is_imported(simulator, linked):
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            simulator.control.post,
            "/api/history",
            {
                "phone": "5511900000001",
                "messages": [
                    {"from": "5511988880001", "text": "old 1"},
                    {"from": "5511988880001", "text": "old 2", "from_me": True},
                    {
                        "from": "5511988880001",
                        "text": "too old",
                        "timestamp": "2001-01-01T00:00:00Z",
                    },
                ],
            },
        )
        await wait_for(lambda: Message.objects.count() == 2, what="history")
    conv = await sync_to_async(Conversation.objects.get)()
    assert conv.unread_count == 0


@pytest.mark.parametrize(
    "mime_type, file_name, ext",
    [
        ("audio/ogg; codecs=opus", "", ".ogg"),
        ("AUDIO/OGG ; codecs=opus", "", ".ogg"),
        ("audio/mpeg", "", ".mp3"),
        ("image/jpeg", "", ".jpg"),
        ("application/pdf", "", ".pdf"),
        ("application/pdf", "Nota Fiscal.PDF", ".pdf"),
        ("application/octet-stream", "planilha.xlsx", ".xlsx"),
        ("text/csv", "", ".csv"),
        ("application/x-made-up", "", ".bin"),
        ("", "", ".bin"),
        ("image/jpeg", "weird.<script>", ".jpg"),
        ("application/x-made-up", "no-extension", ".bin"),
    ],
)
def test_received_files_are_named_by_their_type(mime_type, file_name, ext):
    message = Message(pk=42, mime_type=mime_type, file_name=file_name)
    assert received_media_name(message) == f"{timezone.now():%Y/%m}/in-42{ext}"


async def test_received_media_is_served_only_to_allowed_users(simulator, linked, bob, charlie):
    from django.test import Client

    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(
            simulator.control.send_message,
            to="5511900000001",
            **{"from": "5511988880001"},
            kind="image",
            media_base64=base64.b64encode(PNG).decode(),
            mimetype="image/png",
        )
        await wait_for(lambda: Message.objects.filter(media_status="ready").exists(), what="file")

    def fetch(user) -> tuple[int, bytes]:
        client = Client()
        client.force_login(user)
        response = client.get(f"/conversations/media/{Message.objects.get().pk}/")
        body = b"".join(response.streaming_content) if response.status_code == 200 else b""
        return response.status_code, body

    assert await sync_to_async(fetch)(bob) == (200, PNG)
    assert (await sync_to_async(fetch)(charlie))[0] == 404


async def test_a_reply_quoting_a_message_goes_out_as_a_quote(simulator, linked, alice):
    from whatsapp.runner import command_for

    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        asked = await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="can you deliver?"
        )
        await wait_for(lambda: Message.objects.filter(wa_id=asked).exists())

        def queue() -> Message:
            original = Message.objects.select_related(
                "conversation__session", "conversation__contact"
            ).get(wa_id=asked)
            return conv_services.message_queue_outbound(
                user=alice,
                conversation=original.conversation,
                text="yes, tomorrow",
                reply_to=original,
            )

        reply = await sync_to_async(queue)()
        sent = await wait_for(lambda: c.sent("5511900000001"), what="reply sent")
    assert sent[0]["quoted_id"] == asked

    def command():
        m = Message.objects.select_related("conversation__contact", "reply_to").get(pk=reply.pk)
        return command_for(m, WhatsAppSession.objects.get(pk=linked.pk).phone_number)

    cmd = await sync_to_async(command)()
    assert (cmd.quoted_id, cmd.quoted_text) == (asked, "can you deliver?")
    assert cmd.quoted_sender == "5511988880001@s.whatsapp.net"
