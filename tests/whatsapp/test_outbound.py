"""Writing first, and every kind out, end to end: the phone lookup asked of the worker
over the channel layer, and locations, contact cards and stickers reaching the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import services as conv_services
from conversations.models import Contact, Conversation, Message
from tests.whatsapp.conftest import link, running_worker, wait_for
from whatsapp import voice
from whatsapp.gateway import base
from whatsapp.models import WhatsAppSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

OWN = "5511900000001"
WEBP = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00"
    b"\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


def _start(user, session, phone, **kwargs):
    session = WhatsAppSession.objects.get(pk=session.pk)
    return conv_services.conversation_start(user=user, session=session, phone=phone, **kwargs)


async def _sent(simulator, count: int) -> list[dict]:
    await wait_for(
        lambda: len(simulator.control.sent(OWN)) >= count, what=f"{count} sent at the simulator"
    )
    return simulator.control.sent(OWN)


async def test_an_agent_writes_first_and_the_message_goes_out(simulator, linked, bob):
    async with running_worker():
        await link(simulator, linked, OWN)
        conversation, message = await sync_to_async(_start)(
            bob, linked, "+55 (11) 98888-0001", text="Olá, tudo bem?"
        )
        assert conversation.contact.jid == "5511988880001@s.whatsapp.net"
        assert message.status == "pending" and message.sent_by == bob
        sent = await _sent(simulator, 1)
        assert sent[0]["to"] == "5511988880001@s.whatsapp.net"
        assert sent[0]["text"] == "Olá, tudo bem?"
        await wait_for(lambda: Message.objects.get(pk=message.pk).status == "sent")
        # the lookup went to the number's worker, and only the phone asked for
        lookups = simulator.control.get("/api/lookups", phone=OWN)
        assert [x["phones"] for x in lookups] == [["5511988880001"]]

        # the same phone again (another format): the same conversation, a second message
        again, second = await sync_to_async(_start)(bob, linked, "5511988880001", text="Oi")
        assert again.pk == conversation.pk and second.pk != message.pk
        await _sent(simulator, 2)

    def check() -> None:
        assert Conversation.objects.count() == 1 and Contact.objects.count() == 1
        assert Message.objects.filter(conversation=conversation).count() == 2

    await sync_to_async(check)()


async def test_a_phone_not_on_whatsapp_is_refused_before_anything_is_stored(simulator, linked, bob):
    async with running_worker():
        await link(simulator, linked, OWN)
        await asyncio.to_thread(
            simulator.control.post, "/api/unregistered", {"phones": ["5511977770000"]}
        )
        with pytest.raises(ValidationError) as caught:
            await sync_to_async(_start)(bob, linked, "+55 11 97777-0000", text="Olá")
        assert caught.value.error_dict["phone"][0].code == "not_on_whatsapp"
        assert caught.value.messages == ["This number is not on WhatsApp."]

    def check() -> None:
        assert not Contact.objects.exists() and not Message.objects.exists()

    await sync_to_async(check)()
    assert simulator.control.sent(OWN) == []


async def test_a_number_that_is_not_connected_is_refused(simulator, linked, bob, settings):
    async with running_worker():
        await link(simulator, linked, OWN)
    # the worker stopped: the number is no longer connected
    with pytest.raises(ValidationError) as caught:
        await sync_to_async(_start)(bob, linked, "5511988880001", text="Olá")
    assert caught.value.code == "not_connected"
    assert caught.value.messages == ["The number is not connected; reconnect it in Numbers."]
    # marked connected, yet no worker holds it: nobody answers the lookup in time
    settings.VBCRM_PHONE_LOOKUP_SECONDS = 0.5
    await sync_to_async(WhatsAppSession.objects.filter(pk=linked.pk).update)(status="connected")
    with pytest.raises(ValidationError) as caught:
        await sync_to_async(_start)(bob, linked, "5511988880001", text="Olá")
    assert caught.value.code == "not_connected"
    assert not await sync_to_async(Contact.objects.exists)()


async def test_location_contact_card_and_sticker_go_out_with_their_fields(simulator, linked, alice):
    async with running_worker():
        await link(simulator, linked, OWN)
        conversation, _m = await sync_to_async(_start)(
            alice,
            linked,
            "5511988880001",
            location=conv_services.Location(-23.5505, -46.6333, "Sé", "Praça da Sé, São Paulo"),
        )

        def more() -> None:
            conv = Conversation.objects.select_related("session", "contact").get(pk=conversation.pk)
            conv_services.message_send(
                user=alice,
                conversation=conv,
                text="",
                contact=conv_services.ContactCard(name="João Silva", phone="+55 11 97777-0001"),
            )
            conv_services.message_send(
                user=alice,
                conversation=conv,
                text="",
                upload=SimpleUploadedFile("s.webp", WEBP, content_type="image/webp"),
            )

        await sync_to_async(more)()
        sent = await _sent(simulator, 3)
        location, card, sticker = sent[:3]
        assert location["kind"] == "location"
        assert (location["latitude"], location["longitude"]) == (-23.5505, -46.6333)
        assert location["location_name"] == "Sé"
        assert location["address"] == "Praça da Sé, São Paulo"
        assert card["kind"] == "contact" and card["display_name"] == "João Silva"
        assert "TEL;type=CELL;waid=5511977770001:+5511977770001" in card["text"]
        assert sticker["kind"] == "sticker" and sticker["mimetype"] == "image/webp"
        assert sticker["size"] == len(WEBP)
        await wait_for(
            lambda: set(Message.objects.values_list("status", flat=True)) == {"sent"},
            what="all sent",
        )


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (CI installs it)")
async def test_a_voice_note_recorded_as_webm_goes_out_as_ogg_opus(
    simulator, linked, alice, tmp_path
):
    webm = tmp_path / "note.webm"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1"]
        + ["-c:a", "libopus", str(webm)],
        check=True,
    )
    async with running_worker():
        await link(simulator, linked, OWN)
        upload = SimpleUploadedFile("voice-note.webm", webm.read_bytes(), content_type="audio/webm")
        _conversation, message = await sync_to_async(_start)(
            alice, linked, "5511988880001", upload=upload, kind="voice"
        )
        assert message.kind == "voice" and message.mime_type == "audio/webm"
        sent = await _sent(simulator, 1)
        assert sent[0]["kind"] == "voice"
        assert sent[0]["mimetype"] == "audio/ogg; codecs=opus"
        media = simulator.control.get_bytes(f"/api/sent/{sent[0]['message_id']}/media")
        assert media[:4] == b"OggS"
        await wait_for(lambda: Message.objects.get(pk=message.pk).status == "sent")
    # the page keeps playing what the agent recorded
    stored = await sync_to_async(Message.objects.get)(pk=message.pk)
    assert stored.mime_type == "audio/webm" and stored.media.name.endswith(".webm")


async def test_a_voice_note_that_cannot_be_converted_fails_with_the_reason(
    simulator, linked, alice
):
    async with running_worker():
        await link(simulator, linked, OWN)
        upload = SimpleUploadedFile("voice-note.webm", b"not audio", content_type="audio/webm")
        _conversation, message = await sync_to_async(_start)(
            alice, linked, "5511988880001", upload=upload, kind="voice"
        )
        failed = await wait_for(
            lambda: Message.objects.filter(pk=message.pk, status="failed").first(),
            what="the send to fail",
        )
        assert "voice note" in failed.error
    assert simulator.control.sent(OWN) == []


async def test_an_ogg_voice_note_goes_as_it_is_and_other_kinds_untouched(tmp_path):
    ogg = base.SendMedia(
        to="x",
        kind=base.MessageKind.VOICE,
        path=str(tmp_path / "a.ogg"),
        message_id="1",
        mimetype="audio/ogg",
    )
    assert await voice.prepared(ogg) == dataclasses.replace(ogg, mimetype=voice.VOICE_MIME)
    audio = dataclasses.replace(ogg, kind=base.MessageKind.AUDIO, mimetype="audio/webm")
    assert await voice.prepared(audio) is audio
