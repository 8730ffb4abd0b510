"""Webhooks and push in a real browser, on a phone: an owner registers a webhook (its
secret shown once), a customer writes, the worker delivers the signed event to a
receiver that verifies it, and the delivery shows in the endpoint's log; the profile
page registers the service worker for notifications."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from conversations.services import webhooks
from conversations.webhook_verify import verify
from tests.conversations.test_webhooks import Receiver
from tests.ui.conftest import LiveServer, _wait

PHONE_SIZE = {"width": 360, "height": 740}
CUSTOMER = "5511970008001"


def test_an_owner_adds_a_webhook_on_a_phone_and_receives_a_signed_event(live: LiveServer, login):
    receiver = Receiver()
    try:
        page = login("alice", "/conversations/webhooks/")
        page.set_viewport_size(PHONE_SIZE)
        page.fill(".webhook-form input[name=url]", receiver.url)
        page.fill(".webhook-form input[name=description]", "Meu CRM")
        page.check(".webhook-form input[name=events][value='message.received']")
        # The number the customer writes to (the form picks the first of alice's numbers,
        # and other tests may have given her one named before it).
        page.check(f".webhook-form input[name=session_ids][value='{live.session_id}']")
        page.locator(".webhook-form button[type=submit]").click()
        secret = page.locator("#new-secret code").inner_text()
        assert secret.startswith("whsec_")
        # the form fits a phone's width
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_SIZE["width"]

        # The worker learns of a new endpoint within a few seconds (it reads which
        # endpoints cover a number at most that often): what comes after it is delivered.
        time.sleep(webhooks._COVER_TTL + 1)
        live.say(CUSTOMER, push_name="Webhook Rita", text="Quero um orçamento")

        def ours() -> list[dict]:
            # Only this customer's: other tests' customers may still be writing.
            return [
                r
                for r in receiver.requests
                if json.loads(r["body"])["data"].get("message", {}).get("body")
                == "Quero um orçamento"
            ]

        _wait(ours, 60, "the webhook delivery")
        request = ours()[0]
        event = verify(secret, request["body"], request["headers"])
        assert event["type"] == "message.received"
        assert event["data"]["message"]["body"] == "Quero um orçamento"
        assert json.loads(request["body"])["data"]["conversation"]["contact"]["name"]

        page.goto("/conversations/webhooks/")
        page.locator("table.webhooks a", has_text="Meu CRM").click()
        expect(page.locator("table.webhook-log")).to_contain_text("message.received")
        expect(page.locator("table.webhook-log")).to_contain_text("HTTP 200")
        assert secret not in page.content()
        page.locator(f"table.webhook-log tr:has-text('{event['id']}') form button").click()
        _wait(lambda: len(ours()) >= 2, 60, "the delivery sent again")
        assert ours()[1]["headers"]["X-VBCRM-Event-Id"] == event["id"]
        assert page.errors == []
    finally:
        receiver.close()
        live.manage(
            "shell",
            "-c",
            "from conversations.models import WebhookEndpoint as W; W.objects.all().delete()",
        )


def test_the_profile_page_offers_notifications_on_a_phone(live: LiveServer, login):
    """The service worker registers under the page's CSP, and the button shows (no
    push service is reachable here, so subscribing itself is covered by the server's tests)."""
    page = login("bob", "/profile/")
    page.set_viewport_size(PHONE_SIZE)
    expect(page.locator("#push-settings .push-state")).not_to_be_empty()
    expect(page.locator("#push-on")).to_be_visible()
    registered = page.evaluate(
        "() => navigator.serviceWorker.ready.then(r => r.active && r.active.scriptURL)"
    )
    assert registered.endswith("/sw.js")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_SIZE["width"]
    assert page.errors == []
