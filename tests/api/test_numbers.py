from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api.conftest import url
from whatsapp import services
from whatsapp.models import WhatsAppSession

pytestmark = pytest.mark.django_db


def _with_qr(number: WhatsAppSession) -> WhatsAppSession:
    return services.session_on_qr(session_id=number.pk, code="2@abc,def,ghi")


def test_owner_and_agent_list_the_number_with_their_role(number, as_alice, as_bob, as_charlie):
    assert [(n["id"], n["role"]) for n in as_alice.get(url("/numbers")).json()] == [
        (number.pk, "owner")
    ]
    assert [(n["id"], n["role"]) for n in as_bob.get(url("/numbers")).json()] == [
        (number.pk, "agent")
    ]
    assert as_charlie.get(url("/numbers")).json() == []


def test_one_number(number, as_bob, as_charlie):
    assert as_bob.get(url(f"/numbers/{number.pk}")).json()["name"] == "Support"
    assert as_charlie.get(url(f"/numbers/{number.pk}")).status_code == 404


def test_only_the_owner_sees_the_pairing_code(number, as_alice, as_bob):
    services.session_on_pair_code(session_id=number.pk, phone="5511999990000", code="ABCD-EFGH")
    assert as_alice.get(url(f"/numbers/{number.pk}")).json()["pair_code"] == "ABCD-EFGH"
    assert as_bob.get(url(f"/numbers/{number.pk}")).json()["pair_code"] is None


def test_create_makes_the_caller_the_owner_whatever_owner_id_says(alice, charlie, as_charlie):
    response = as_charlie.post(
        url("/numbers"), {"name": "Sales", "owner_id": alice.pk}, content_type="application/json"
    )
    assert response.status_code == 201
    created = WhatsAppSession.objects.get(pk=response.json()["id"])
    assert created.owner == charlie
    assert response.json()["role"] == "owner" and response.json()["status"] == "new"


def test_a_duplicate_name_is_a_409(number, as_alice):
    response = as_alice.post(url("/numbers"), {"name": "Support"}, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_name"
    assert response.json()["detail"][0]["field"] == "name"


def test_the_owners_limit_is_a_409(as_alice, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 1
    first = as_alice.post(url("/numbers"), {"name": "One"}, content_type="application/json")
    assert first.status_code == 201
    response = as_alice.post(url("/numbers"), {"name": "Two"}, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["error"] == "limit_reached"
    assert WhatsAppSession.objects.count() == 1


def test_a_missing_or_blank_name_is_a_400_naming_the_field(as_alice):
    for body in ({}, {"name": "   "}):
        response = as_alice.post(url("/numbers"), body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid"
        assert response.json()["detail"][0]["field"] == "name"
    response = as_alice.post(url("/numbers"), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_the_qr_code_as_svg_and_png_for_the_owner(number, as_alice):
    _with_qr(number)
    response = as_alice.get(url(f"/numbers/{number.pk}/qr"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert response["Cache-Control"] == "no-store"
    response = as_alice.get(url(f"/numbers/{number.pk}/qr"), {"format": "png"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    assert as_alice.get(url(f"/numbers/{number.pk}/qr"), {"format": "gif"}).status_code == 400


def test_the_qr_code_is_the_owners_only(number, as_bob, as_charlie):
    _with_qr(number)
    response = as_bob.get(url(f"/numbers/{number.pk}/qr"))
    assert response.status_code == 403
    assert response.json()["error"] == "owner_only"
    assert as_charlie.get(url(f"/numbers/{number.pk}/qr")).status_code == 404


def test_no_qr_code_yet_is_a_409(number, as_alice):
    response = as_alice.get(url(f"/numbers/{number.pk}/qr"))
    assert response.status_code == 409
    assert response.json()["error"] == "no_qr"


def test_pair_by_qr_or_by_pairing_code(number, as_alice):
    response = as_alice.post(url(f"/numbers/{number.pk}/pair"), content_type="application/json")
    assert response.status_code == 202
    response = as_alice.post(
        url(f"/numbers/{number.pk}/pair"),
        {"phone": "+55 (11) 99999-0001"},
        content_type="application/json",
    )
    assert response.status_code == 202
    number.refresh_from_db()
    assert number.pair_phone == "5511999990001"


def test_pair_refuses_a_bad_phone_and_a_connected_number(number, as_alice):
    response = as_alice.post(
        url(f"/numbers/{number.pk}/pair"), {"phone": "abc"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "phone"
    services.session_on_state(session_id=number.pk, state="connected")
    response = as_alice.post(url(f"/numbers/{number.pk}/pair"), content_type="application/json")
    assert response.status_code == 409
    assert response.json()["error"] == "connected"


def test_managing_is_for_the_owner_only(number, as_bob, as_charlie):
    for client, status in ((as_bob, 403), (as_charlie, 404)):
        assert (
            client.post(
                url(f"/numbers/{number.pk}/pair"), content_type="application/json"
            ).status_code
            == status
        )
        assert client.post(url(f"/numbers/{number.pk}/logout")).status_code == status
        assert client.delete(url(f"/numbers/{number.pk}")).status_code == status
    number.refresh_from_db()
    assert number.status == "new"


def test_logout_without_a_worker_logs_out_at_once(number, as_alice):
    services.session_on_state(session_id=number.pk, state="connected")
    response = as_alice.post(url(f"/numbers/{number.pk}/logout"))
    assert response.status_code == 202
    assert response.json()["status"] == "logged_out"


def test_logout_with_a_worker_asks_it(number, as_alice):
    services.session_on_state(session_id=number.pk, state="connected")
    WhatsAppSession.objects.filter(pk=number.pk).update(
        lease_holder="w1", lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    response = as_alice.post(url(f"/numbers/{number.pk}/logout"))
    assert response.status_code == 202
    assert response.json()["logout_requested"] is True
    assert response.json()["status"] == "connected"


def test_delete(number, as_alice):
    response = as_alice.delete(url(f"/numbers/{number.pk}"))
    assert response.status_code == 204
    assert not WhatsAppSession.objects.exists()
    assert as_alice.delete(url(f"/numbers/{number.pk}")).status_code == 404


def test_sessions_health_shows_state_lease_and_silence(number, as_bob, as_charlie, settings):
    settings.WHATSAPP_SILENCE_SECONDS = 90
    services.session_on_state(session_id=number.pk, state="connected")
    now = timezone.now()
    WhatsAppSession.objects.filter(pk=number.pk).update(
        lease_holder="host:1:abc",
        lease_expires_at=now + timedelta(seconds=30),
        last_event_at=now - timedelta(seconds=300),
        child_restarts=3,
    )
    [row] = as_bob.get(url("/sessions/health")).json()
    assert row["id"] == number.pk and row["status"] == "connected"
    assert row["lease_holder"] == "host:1:abc" and row["lease_live"] is True
    assert row["child_restarts"] == 3
    assert row["silent"] is True
    WhatsAppSession.objects.filter(pk=number.pk).update(last_event_at=timezone.now())
    [row] = as_bob.get(url("/sessions/health")).json()
    assert row["silent"] is False
    assert as_charlie.get(url("/sessions/health")).json() == []


def test_a_disconnected_number_is_not_silent(number, as_alice):
    [row] = as_alice.get(url("/sessions/health")).json()
    assert row["status"] == "new" and row["silent"] is False and row["lease_live"] is False


def test_a_body_over_the_data_limit_is_a_413(as_alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = as_alice.post(url("/numbers"), {"name": "x" * 200}, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert not WhatsAppSession.objects.exists()
