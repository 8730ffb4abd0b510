"""message_send's other kinds (location, contact card, sticker) and the phone formats an
agent may type to write first; the lookup itself is tested end to end in
tests/whatsapp/test_outbound.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import services, vcard
from conversations.models import Contact, Message
from vbcrm.errors import error_items
from whatsapp.phones import phone_from_input

pytestmark = pytest.mark.django_db


def _send(conversation, user, **kwargs) -> Message:
    return services.message_send(user=user, conversation=conversation, text="", **kwargs)


def _refused(conversation, user, **kwargs) -> tuple[str | None, str]:
    with pytest.raises(ValidationError) as caught:
        _send(conversation, user, **kwargs)
    field, code, _message = error_items(caught.value)[0]
    return field, code


def test_a_location_is_stored_with_its_fields(conversation, bob):
    m = _send(
        conversation, bob, location=services.Location(-23.5505, -46.6333, " Sé ", "Praça da Sé")
    )
    assert (m.kind, m.status, m.latitude, m.longitude) == (
        "location",
        "pending",
        -23.5505,
        -46.6333,
    )
    assert (m.location_name, m.body) == ("Sé", "Praça da Sé")
    conversation.refresh_from_db()
    assert conversation.last_message_preview.startswith("📍")


@pytest.mark.parametrize(
    ("lat", "lng", "field"),
    [(91, 0, "latitude"), (0, -180.5, "longitude"), (float("nan"), 0, "latitude")],
)
def test_a_location_out_of_range_is_refused(conversation, bob, lat, lng, field):
    location = services.Location(lat, lng)
    assert _refused(conversation, bob, location=location) == (field, "invalid_coordinate")
    assert not Message.objects.filter(direction="ATENDENTE").exists()


def test_a_contact_card_from_a_name_and_a_phone(conversation, bob):
    m = _send(
        conversation, bob, contact=services.ContactCard(name="João", phone="+55 11 97777-0001")
    )
    assert m.kind == "contact"
    card = vcard.parse(m.body)
    assert card.name == "João" and card.phones == ["+5511977770001"]
    assert "waid=5511977770001" in m.body


def test_a_contact_card_as_a_vcard(conversation, bob):
    text = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL:+1 415 555 0100\nEND:VCARD"
    m = _send(conversation, bob, contact=services.ContactCard(vcard=text))
    assert m.body == text
    assert _refused(conversation, bob, contact=services.ContactCard(vcard="Ana")) == (
        "vcard",
        "invalid",
    )
    assert _refused(conversation, bob, contact=services.ContactCard(phone="5511977770001")) == (
        "name",
        "required",
    )
    assert _refused(conversation, bob, contact=services.ContactCard(name="Ana", phone="12")) == (
        "phone",
        "invalid_phone",
    )


def test_a_webp_goes_as_a_sticker_and_one_thing_goes_at_a_time(conversation, bob):
    webp = SimpleUploadedFile("s.webp", b"RIFF....WEBP", content_type="image/webp")
    assert _send(conversation, bob, upload=webp).kind == "sticker"
    both = {
        "upload": SimpleUploadedFile("s.webp", b"x", content_type="image/webp"),
        "location": services.Location(1, 2),
    }
    assert _refused(conversation, bob, **both) == ("kind", "kind")


@pytest.mark.parametrize(
    ("typed", "default", "digits"),
    [
        ("+55 (11) 98888-0001", "", "5511988880001"),
        ("0055 11 98888 0001", "", "5511988880001"),
        ("5511988880001", "", "5511988880001"),
        ("11 98888-0001", "55", "5511988880001"),
        ("5511988880001", "55", "5511988880001"),
        ("+1 415 555 0100", "55", "14155550100"),
    ],
)
def test_phone_formats(typed, default, digits):
    assert phone_from_input(typed, default) == digits


@pytest.mark.parametrize("typed", ["", "abc", "+55 11", "+1234567890123456", "11-9888x"])
def test_phones_that_are_no_phone_are_refused(typed):
    with pytest.raises(ValidationError) as caught:
        phone_from_input(typed, "55")
    assert error_items(caught.value)[0][:2] == ("phone", "invalid_phone")


def test_writing_first_refuses_before_any_lookup(number, charlie, bob):
    with pytest.raises(ValidationError) as caught:
        services.conversation_start(user=charlie, session=number, phone="5511988880001", text="x")
    assert error_items(caught.value)[0][:2] == ("session_id", "not_found")
    with pytest.raises(ValidationError) as caught:
        services.conversation_start(user=bob, session=number, phone="5511988880001", text=" ")
    assert error_items(caught.value)[0][:2] == ("text", "empty")
    # a number that is not connected: no lookup is even asked for
    with pytest.raises(ValidationError) as caught:
        services.conversation_start(user=bob, session=number, phone="5511988880001", text="x")
    assert caught.value.code == "not_connected"
    assert not Contact.objects.exists()
