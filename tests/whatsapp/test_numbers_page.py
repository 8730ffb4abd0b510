"""The Connections page: owners manage their numbers, agents only see them."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.test import Client

from whatsapp import services
from whatsapp.models import SessionAgent, WhatsAppSession

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _as(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_everyone_who_works_a_number_sees_it_and_only_the_owner_gets_buttons(
    client, number, alice, bob, charlie
):
    owner = _as(client, alice).get("/numbers/").content.decode()
    assert (
        f'id="number-{number.pk}"' in owner and f'hx-post="/numbers/{number.pk}/delete/"' in owner
    )
    agent = _as(client, bob).get("/numbers/").content.decode()
    assert f'id="number-{number.pk}"' in agent and "/delete/" not in agent
    outsider = _as(client, charlie).get("/numbers/").content.decode()
    assert f'id="number-{number.pk}"' not in outsider and "<h2>Support</h2>" not in outsider


def test_connect_a_number_answers_the_linking_panel(client, alice):
    _as(client, alice)
    response = client.post("/numbers/create/", {"name": "Vendas"}, **HTMX)
    session = WhatsAppSession.objects.get(name="Vendas")
    body = response.content.decode()
    assert f'data-session="{session.pk}"' in body and 'class="qr"' in body
    assert "vb:toast" in response["HX-Trigger"]


def test_the_panel_shows_the_current_qr_code_as_an_image(client, number, alice):
    services.session_on_qr(session_id=number.pk, code="2@abc,def")
    body = _as(client, alice).get(f"/numbers/{number.pk}/link/").content.decode()
    assert 'src="data:image/svg+xml;base64,' in body


def test_the_linking_panel_and_its_codes_are_for_the_owner_only(
    client, number, alice, bob, charlie
):
    services.session_on_qr(session_id=number.pk, code="2@abc,def")
    services.session_on_pair_code(session_id=number.pk, phone="5511999990000", code="ABCD-EFGH")
    url = f"/numbers/{number.pk}/link/"
    owner = _as(client, alice).get(url, **HTMX).content.decode()
    assert "data:image/svg+xml;base64," in owner and "ABCD-EFGH" in owner
    for user, status in ((bob, 403), (charlie, 404)):
        _as(client, user)
        for headers in (HTMX, {}):
            response = client.get(url, **headers)
            body = response.content.decode()
            assert response.status_code == status
            assert "data:image/svg" not in body and "ABCD-EFGH" not in body
    # and the numbers page tells the agent what is going on, without the code
    page = _as(client, bob).get("/numbers/").content.decode()
    assert "Waiting for the owner to link it." in page
    assert "ABCD-EFGH" not in page and "data:image/svg" not in page and "<svg" not in page
    card = client.get(f"/numbers/{number.pk}/", **HTMX).content.decode()
    assert "Waiting for the owner to link it." in card and "ABCD-EFGH" not in card


def test_an_agent_s_card_says_nothing_of_linking_once_linked(client, number, bob):
    services.session_on_state(session_id=number.pk, state="connected")
    card = _as(client, bob).get(f"/numbers/{number.pk}/", **HTMX).content.decode()
    assert 'class="muted owner-links" data-show-when="new waiting_qr pairing" hidden' in card


def test_the_limit_and_duplicate_names_are_answered_clearly(client, alice, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 1
    _as(client, alice)
    client.post("/numbers/create/", {"name": "Um"}, **HTMX)
    again = client.post("/numbers/create/", {"name": "Um"}, **HTMX).content.decode()
    assert "the most allowed" in again
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 5
    duplicate = client.post("/numbers/create/", {"name": "Um"}, **HTMX).content.decode()
    assert "already have a number with this name" in duplicate
    assert WhatsAppSession.objects.count() == 1


def test_a_phone_linked_twice_shows_the_reason_in_the_panel(client, number, alice):
    other = services.session_create(owner=alice, name="Other")
    services.session_on_paired(
        session_id=number.pk, jid="5511900000001.0:1@s.whatsapp.net", phone="5511900000001"
    )
    with pytest.raises(Exception, match="already linked"):
        services.session_on_paired(
            session_id=other.pk, jid="5511900000001.0:2@s.whatsapp.net", phone="5511900000001"
        )
    body = _as(client, alice).get(f"/numbers/{other.pk}/link/").content.decode()
    assert "already linked to another number" in body


def test_linking_by_pairing_code_and_bad_phones(client, number, alice):
    _as(client, alice)
    client.post(f"/numbers/{number.pk}/link/", {"pair_phone": "+55 (11) 99999-0001"}, **HTMX)
    number.refresh_from_db()
    assert number.pair_phone == "5511999990001" and number.status == "new"
    bad = client.post(f"/numbers/{number.pk}/link/", {"pair_phone": "abc"}, **HTMX)
    assert "country code" in bad.content.decode()


def test_logout_and_delete_are_for_the_owner(client, number, alice, bob, charlie):
    for user, status in ((bob, 403), (charlie, 404)):
        _as(client, user)
        assert client.post(f"/numbers/{number.pk}/logout/", **HTMX).status_code == status
        assert client.post(f"/numbers/{number.pk}/delete/", **HTMX).status_code == status
    _as(client, alice)
    response = client.post(f"/numbers/{number.pk}/logout/", **HTMX)
    assert response.status_code == 200
    number.refresh_from_db()
    assert number.status == "logged_out"  # no worker holds it: logged out at once
    with mock.patch("realtime.events.access_changed") as access_changed:
        response = client.post(f"/numbers/{number.pk}/delete/", **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not WhatsAppSession.objects.filter(pk=number.pk).exists()
    assert sorted(access_changed.call_args.args[0]) == sorted([alice.pk, bob.pk])


def settings_form(row, **changes) -> dict:
    """The admin's number-settings and keyword-rule inline fields, as saved (plus changes)."""
    values = {
        "time_zone": row.time_zone,
        "greeting_on": row.greeting_on,
        "greeting_delay_seconds": row.greeting_delay_seconds,
        "greeting_message": row.greeting_message,
        "away_message": row.away_message,
        "away_period_hours": row.away_period_hours,
        "business_hours": json.dumps(row.business_hours),
        "auto_close_hours": row.auto_close_hours,
        "auto_close_message": row.auto_close_message,
        "auto_daily_cap": row.auto_daily_cap,
        "agent_silence_minutes": row.agent_silence_minutes,
        "auto_rate_per_minute": row.auto_rate_per_minute,
        **changes,
    }
    return {
        "keyword_rules-TOTAL_FORMS": 0,
        "keyword_rules-INITIAL_FORMS": 0,
        **{f"number_settings-0-{k}": v for k, v in values.items()},
    }


def test_admin_refuses_a_bad_schedule_and_saves_nothing(admin_client, number):
    row = number.number_settings
    data = {
        "name": number.name,
        "history_days": 7,
        "sessionagent_set-TOTAL_FORMS": 0,
        "sessionagent_set-INITIAL_FORMS": 0,
        "number_settings-TOTAL_FORMS": 1,
        "number_settings-INITIAL_FORMS": 1,
        "number_settings-0-id": row.pk,
        "number_settings-0-session": number.pk,
        **settings_form(
            row,
            greeting_message="Olá",
            business_hours=json.dumps({"weekly": {"mon": [["18:00", "08:00"]]}}),
            time_zone="Nowhere/Atlantis",
        ),
    }
    response = admin_client.post(f"/admin/whatsapp/whatsappsession/{number.pk}/change/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unknown time zone" in page and "ends before it starts" in page
    row.refresh_from_db()
    assert (row.greeting_message, row.time_zone) == ("", "America/Sao_Paulo")


def test_agents_added_in_the_admin_go_through_the_services(admin_client, number, charlie):
    settings_row = number.number_settings
    data = {
        "name": number.name,
        "history_days": 7,
        "sessionagent_set-TOTAL_FORMS": 2,
        "sessionagent_set-INITIAL_FORMS": 1,
        "sessionagent_set-0-id": SessionAgent.objects.get(session=number).pk,
        "sessionagent_set-0-session": number.pk,
        "sessionagent_set-0-user": SessionAgent.objects.get(session=number).user_id,
        "sessionagent_set-0-DELETE": "on",
        "sessionagent_set-1-session": number.pk,
        "sessionagent_set-1-user": charlie.pk,
        "number_settings-TOTAL_FORMS": 1,
        "number_settings-INITIAL_FORMS": 1,
        "number_settings-0-id": settings_row.pk,
        "number_settings-0-session": number.pk,
        **settings_form(settings_row),
    }
    bob_id = data["sessionagent_set-0-user"]
    with mock.patch("realtime.events.access_changed") as access_changed:
        response = admin_client.post(f"/admin/whatsapp/whatsappsession/{number.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(SessionAgent.objects.filter(session=number).values_list("user_id", flat=True)) == [
        charlie.pk
    ]
    told = sorted(call.args[0][0] for call in access_changed.call_args_list)
    assert told == sorted([bob_id, charlie.pk])
