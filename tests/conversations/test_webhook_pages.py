"""The webhooks page: owners register endpoints for their own numbers (secret shown
once), edit and delete them, read the delivery log and send an event again; nobody
else sees or touches them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import WebhookDelivery, WebhookEndpoint
from conversations.services import webhooks
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True


def _form(number, **over):
    data = {
        "url": URL,
        "description": "CRM",
        "events": ["message.received", "conversation.closed"],
        "session_ids": [str(number.pk)],
        "active": "on",
    }
    data.update(over)
    return data


def test_an_owner_registers_a_webhook_and_sees_its_secret_once(client, alice, number):
    client.force_login(alice)
    page = client.post(reverse("conversations:webhooks"), _form(number))
    assert page.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == alice
    assert list(endpoint.sessions.all()) == [number]
    assert endpoint.events == ["conversation.closed", "message.received"]
    assert endpoint.secret in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    # never again
    for url in [
        reverse("conversations:webhooks"),
        reverse("conversations:webhook_detail", args=[endpoint.pk]),
    ]:  # noqa: E501
        assert endpoint.secret not in client.get(url).content.decode()


def test_bad_input_is_refused_with_the_reason(client, alice, number, settings):
    client.force_login(alice)
    page = client.post(reverse("conversations:webhooks"), _form(number, events=[]))
    assert page.status_code == 400
    assert "Choose one or more of the events" in page.content.decode()
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = False
    page = client.post(reverse("conversations:webhooks"), _form(number))
    assert page.status_code == 400
    assert "not allowed for webhooks" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_only_the_users_own_numbers_can_be_covered(client, bob, alice, number):
    """bob is an agent of alice's number, not its owner."""
    mine = whatsapp_services.session_create(owner=bob, name="Bob's")
    client.force_login(bob)
    page = client.post(
        reverse("conversations:webhooks"), _form(number, session_ids=[str(number.pk)])
    )
    assert page.status_code == 400
    assert not WebhookEndpoint.objects.exists()
    page = client.post(
        reverse("conversations:webhooks"),
        _form(number, session_ids=[str(number.pk), str(mine.pk)]),
    )
    assert page.status_code == 201
    assert list(WebhookEndpoint.objects.get().sessions.all()) == [mine]


def test_others_cannot_see_edit_delete_or_resend(client, alice, charlie, number):
    endpoint = webhooks.webhook_endpoint_create(
        owner=alice, url=URL, events=["message.received"], sessions=[number]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="6f1c1c1e-0000-4000-8000-000000000001",
        event_type="message.received", body="{}", status="failed",
        next_attempt_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    client.force_login(charlie)
    assert (
        client.get(reverse("conversations:webhook_detail", args=[endpoint.pk])).status_code == 404
    )
    assert (
        client.post(reverse("conversations:webhook_delete", args=[endpoint.pk])).status_code == 404
    )
    assert (
        client.post(reverse("conversations:webhook_resend", args=[delivery.pk])).status_code == 404
    )
    assert URL not in client.get(reverse("conversations:webhooks")).content.decode()
    assert WebhookDelivery.objects.count() == 1 and WebhookEndpoint.objects.exists()


def test_the_log_shows_deliveries_and_sends_again(client, alice, number):
    endpoint = webhooks.webhook_endpoint_create(
        owner=alice, url=URL, events=["message.received"], sessions=[number]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="6f1c1c1e-0000-4000-8000-000000000001",
        event_type="message.received", body="{}", status="failed", attempts=7,
        response_status=502, response_excerpt="<b>bad gateway</b>", error="Answered HTTP 502.",
        next_attempt_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    client.force_login(alice)
    page = client.get(reverse("conversations:webhook_detail", args=[endpoint.pk])).content.decode()
    assert "HTTP 502" in page and "&lt;b&gt;bad gateway&lt;/b&gt;" in page
    client.post(reverse("conversations:webhook_resend", args=[delivery.pk]))
    again = WebhookDelivery.objects.latest("id")
    assert again.pk != delivery.pk and str(again.event_id) == str(delivery.event_id)
    assert again.status == WebhookDelivery.Status.PENDING


def test_an_owner_edits_and_deletes_a_webhook(client, alice, number):
    endpoint = webhooks.webhook_endpoint_create(
        owner=alice, url=URL, events=["message.received"], sessions=[number]
    )
    client.force_login(alice)
    url = reverse("conversations:webhook_detail", args=[endpoint.pk])
    answer = client.post(url, _form(number, events=["number.status"], active=""))
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["number.status"] and not endpoint.active
    client.post(reverse("conversations:webhook_delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.exists()


def test_admin_adds_a_webhook_for_any_number_and_never_shows_the_secret_again(
    admin_client, alice, number
):
    answer = admin_client.post(
        reverse("admin:conversations_webhookendpoint_add"),
        {
            "owner": alice.pk,
            "url": URL,
            "description": "Admin hook",
            "events": ["number.status"],
            "sessions": [number.pk],
            "active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in answer.content.decode()  # the message, this once
    change = admin_client.get(
        reverse("admin:conversations_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()
    assert endpoint.secret not in change and endpoint.secret[:6] in change
    assert list(endpoint.sessions.all()) == [number]


def test_admin_refuses_a_metadata_address(admin_client, alice, number, settings):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = False
    answer = admin_client.post(
        reverse("admin:conversations_webhookendpoint_add"),
        {
            "owner": alice.pk,
            "url": "http://169.254.169.254/",
            "events": ["number.status"],
            "sessions": [number.pk],
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 200
    assert "not allowed for webhooks" in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_admin_deletes_selected_webhooks_through_the_service(
    admin_client, alice, number, monkeypatch
):
    """ "Delete selected" goes one by one through webhook_endpoint_delete (each endpoint
    locked before it goes, and this process's cache forgotten), deliveries with them."""
    from conversations import services
    from tests.factories import inbound

    ends = [
        webhooks.webhook_endpoint_create(
            owner=alice, url=f"{URL}{i}", events=["message.received"], sessions=[number]
        )
        for i in range(2)
    ]
    services.message_receive(session=number, msg=inbound(text="for both"))
    assert WebhookDelivery.objects.count() == 2
    deleted = []
    real = webhooks.webhook_endpoint_delete
    monkeypatch.setattr(
        webhooks,
        "webhook_endpoint_delete",
        lambda *, endpoint: deleted.append(endpoint.pk) or real(endpoint=endpoint),
    )
    answer = admin_client.post(
        reverse("admin:conversations_webhookendpoint_changelist"),
        {"action": "delete_selected", "_selected_action": [e.pk for e in ends], "post": "yes"},
    )
    assert answer.status_code == 302
    assert sorted(deleted) == sorted(e.pk for e in ends)
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
