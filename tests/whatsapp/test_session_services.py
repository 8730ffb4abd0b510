from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, connection, transaction

from whatsapp import services
from whatsapp.models import NumberSettings, WhatsAppSession

pytestmark = pytest.mark.django_db


def test_it_creates_a_number_with_its_settings(alice):
    session = services.session_create(owner=alice, name="  Vendas   SP ")
    assert session.name == "Vendas SP"
    assert session.status == WhatsAppSession.Status.NEW
    assert NumberSettings.objects.filter(session=session).exists()


def test_it_refuses_the_sixth_number(alice, bob, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 5
    for i in range(5):
        services.session_create(owner=alice, name=f"n{i}")
    with pytest.raises(ValidationError) as exc:
        services.session_create(owner=alice, name="n5")
    assert exc.value.code == "limit_reached"
    assert WhatsAppSession.objects.filter(owner=alice).count() == 5
    # The limit is per owner.
    services.session_create(owner=bob, name="n0")


def test_the_limit_comes_from_settings(alice, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 1
    services.session_create(owner=alice, name="one")
    with pytest.raises(ValidationError):
        services.session_create(owner=alice, name="two")


def test_it_refuses_a_duplicate_name_for_the_same_owner(alice, bob):
    services.session_create(owner=alice, name="Support")
    with pytest.raises(ValidationError) as exc:
        services.session_create(owner=alice, name="Support")
    assert exc.value.error_dict["name"][0].code == "duplicate_name"
    services.session_create(owner=bob, name="Support")


def test_it_refuses_an_empty_name(alice):
    with pytest.raises(ValidationError):
        services.session_create(owner=alice, name="   ")


def test_the_database_refuses_a_duplicate_name(alice):
    WhatsAppSession.objects.create(owner=alice, name="X")
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppSession.objects.create(owner=alice, name="X")


def test_it_refuses_to_link_a_phone_already_linked(alice, bob):
    first = services.session_create(owner=alice, name="A")
    second = services.session_create(owner=bob, name="B")
    second.pair_code = "ABCD1234"  # the second number was linking by pairing code
    second.save(update_fields=["pair_code"])
    services.session_on_paired(
        session_id=first.pk, jid="5511999990001:3@s.whatsapp.net", phone="5511999990001"
    )
    with pytest.raises(ValidationError) as exc:
        services.session_on_paired(
            session_id=second.pk, jid="5511999990001:4@s.whatsapp.net", phone="+55 11 99999-0001"
        )
    assert exc.value.code == "duplicate_number"
    second.refresh_from_db()
    assert second.status == WhatsAppSession.Status.LOGGED_OUT
    assert second.phone_number == ""
    assert second.pair_code == ""  # spent, not left on show


def test_the_database_refuses_a_phone_linked_twice(alice, bob):
    WhatsAppSession.objects.create(owner=alice, name="A", phone_number="5511999990001")
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppSession.objects.create(owner=bob, name="B", phone_number="5511999990001")


def test_a_logged_out_number_frees_its_phone(alice, bob):
    first = services.session_create(owner=alice, name="A")
    services.session_on_paired(
        session_id=first.pk, jid="55119:1@s.whatsapp.net", phone="5511999990001"
    )
    services.session_on_state(session_id=first.pk, state="logged_out")
    second = services.session_create(owner=bob, name="B")
    services.session_on_paired(
        session_id=second.pk, jid="55119:2@s.whatsapp.net", phone="5511999990001"
    )
    second.refresh_from_db()
    assert second.phone_number == "5511999990001"
    # and relinking the old one starts clean, without blocking the phone
    services.session_request_link(session=first)
    first.refresh_from_db()
    assert first.phone_number == "" and first.status == WhatsAppSession.Status.NEW


def test_connected_state_clears_the_qr_and_records_link_time(alice):
    s = services.session_create(owner=alice, name="A")
    services.session_on_qr(session_id=s.pk, code="2@qr")
    s.refresh_from_db()
    assert s.status == WhatsAppSession.Status.WAITING_QR and s.qr_code == "2@qr"
    services.session_on_state(session_id=s.pk, state="connected")
    s.refresh_from_db()
    assert s.status == WhatsAppSession.Status.CONNECTED
    assert s.qr_code == "" and s.connected_at is not None and s.last_event_at is not None


def test_agents_can_be_added_once_and_removed(number, bob, charlie):
    services.session_agent_add(session=number, user=charlie)
    services.session_agent_add(session=number, user=charlie)
    assert set(number.agents.values_list("username", flat=True)) == {"bob", "charlie"}
    services.session_agent_remove(session=number, user=charlie)
    assert list(number.agents.values_list("username", flat=True)) == ["bob"]


def test_the_owner_is_not_added_as_agent(number, alice):
    with pytest.raises(ValidationError):
        services.session_agent_add(session=number, user=alice)


def test_deleting_a_number_deletes_its_conversations(number):
    from conversations.models import Conversation
    from conversations.services import message_receive
    from tests.factories import inbound

    message_receive(session=number, msg=inbound())
    services.session_delete(session=number)
    assert not WhatsAppSession.objects.exists()
    assert not Conversation.objects.exists()


def test_phone_numbers_are_normalised_and_checked():
    assert services.normalise_phone("+55 (11) 99999-0001") == "5511999990001"
    for bad in ["", "abc", "123", "1" * 16]:
        with pytest.raises(ValidationError):
            services.normalise_phone(bad)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_cannot_exceed_the_limit(postgres_only, alice, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 5
    for i in range(4):
        services.session_create(owner=alice, name=f"n{i}")
    barrier = threading.Barrier(2)
    results: list[str] = []

    def create(name: str) -> None:
        try:
            barrier.wait()
            services.session_create(owner=alice, name=name)
            results.append("ok")
        except ValidationError as exc:
            results.append(exc.code)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=create, args=(f"race{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["limit_reached", "ok"]
    assert WhatsAppSession.objects.filter(owner=alice).count() == 5


def test_a_number_being_linked_stays_linking_while_whatsapp_is_unreachable(alice):
    s = services.session_create(owner=alice, name="A")
    services.session_on_state(session_id=s.pk, state="disconnected", detail="no route")
    s.refresh_from_db()
    assert s.status == WhatsAppSession.Status.NEW and s.status_detail == "no route"
    assert WhatsAppSession.objects.filter(services.runnable_sessions_q(), pk=s.pk).exists()
    services.session_on_state(session_id=s.pk, state="pairing_expired")
    s.refresh_from_db()
    assert s.status == WhatsAppSession.Status.DISCONNECTED
    assert not WhatsAppSession.objects.filter(services.runnable_sessions_q(), pk=s.pk).exists()
