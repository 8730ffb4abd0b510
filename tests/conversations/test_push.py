"""Web push: a customer's message notifies the agents' browsers (the payload encrypted
for them, signed with our VAPID key), once a minute per conversation at most, not
agents with an inbox tab open; browsers the push service says are gone are forgotten.

The push service is a local receiver here; it decrypts what it gets with http_ece, the
library pywebpush encrypts with, as a browser would."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import timedelta
from unittest import mock

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import push_keys, services
from conversations.models import AgentPresence, PushOutbox, PushSubscription, PushThrottle
from conversations.push_delivery import PinnedResolver, push_send, push_session
from conversations.services import push
from tests.conversations.test_webhooks import Receiver
from tests.factories import inbound

pytestmark = pytest.mark.django_db


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Browser:
    """A browser's push subscription keys (what PushManager.subscribe() makes)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self.p256dh = b64(point)

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth)
        return json.loads(plain)


@pytest.fixture(autouse=True)
def _push_settings(settings, tmp_path):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True  # the push "service" listens on loopback
    settings.DATA_DIR = tmp_path
    settings.VBCRM_VAPID_PRIVATE_KEY = ""
    push_keys.vapid.cache_clear()
    push.push_subscriptions_changed()
    yield
    push_keys.vapid.cache_clear()


@pytest.fixture
def service():
    r = Receiver()
    r.answers = []
    yield r
    r.close()


def _subscribe(user, service, browser: Browser, path: str = "/push/1") -> PushSubscription:
    return push.push_subscription_save(
        user=user, endpoint=f"http://127.0.0.1:{service.port}{path}",
        p256dh=browser.p256dh, auth=b64(browser.auth), user_agent="Firefox",
    )  # fmt: skip


def run_sender() -> int:
    """One pass of the worker's push loop, its database calls here (the test's
    transaction holds the fixtures); the worker makes them on its database threads."""
    jobs = push.push_claim()

    async def go() -> list[int | None]:
        async with push_session() as session:
            return list(await asyncio.gather(*(push_send(session, j) for j in jobs)))

    statuses = asyncio.run(go())
    push.push_results(results=[(j.subscription_id, s) for j, s in zip(jobs, statuses, strict=True)])
    return len(jobs)


def test_a_customer_message_pushes_an_encrypted_notification(bob, number, service):
    browser = Browser()
    _subscribe(bob, service, browser)
    message = services.message_receive(
        session=number, msg=inbound(text="Preciso trocar o pedido 123", push_name="Maria Souza")
    )
    assert run_sender() == 1

    [request] = service.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    data = browser.decrypt(request["body"])
    assert data["title"] == "Maria Souza"
    assert data["body"] == "Preciso trocar o pedido 123"
    assert data["url"] == f"/conversations/{message.conversation_id}/"
    assert data["tag"] == f"conversation-{message.conversation_id}"
    # signed with our VAPID key, which browsers subscribe with
    assert f"k={push_keys.public_key()}" in headers["authorization"], headers
    assert headers["content-encoding"] == "aes128gcm"
    assert PushSubscription.objects.get().last_sent_at is not None


def test_vapid_keys_are_made_once_and_kept(settings):
    first = push_keys.public_key()
    assert (settings.DATA_DIR / push_keys.KEY_FILE).stat().st_mode & 0o777 == 0o600
    push_keys.vapid.cache_clear()
    assert push_keys.public_key() == first


def test_a_gone_subscription_is_removed(bob, number, service):
    _subscribe(bob, service, Browser())
    service.answers = [(410, {}, b"gone")]
    services.message_receive(session=number, msg=inbound())
    run_sender()
    assert len(service.requests) == 1
    assert not PushSubscription.objects.exists()


def test_at_most_one_push_per_conversation_a_minute(bob, number, service):
    _subscribe(bob, service, Browser())
    services.message_receive(session=number, msg=inbound(text="one"))
    assert len(push.push_claim()) == 1
    services.message_receive(session=number, msg=inbound(text="two"))
    assert push.push_claim() == []  # within the minute
    services.message_receive(session=number, msg=inbound(text="x", phone="5511900000077"))
    assert len(push.push_claim()) == 1  # another conversation
    later = timezone.now() + timedelta(seconds=61)
    services.message_receive(session=number, msg=inbound(text="three"))
    with mock.patch("django.utils.timezone.now", return_value=later):
        [job] = push.push_claim()
    assert "three" in job.payload


def test_a_batch_of_one_conversation_is_one_push_of_its_latest(bob, number, service):
    _subscribe(bob, service, Browser())
    services.message_receive_batch(
        session=number, msgs=[inbound(text="a"), inbound(text="b"), inbound(text="c")]
    )
    assert PushOutbox.objects.count() == 3
    [job] = push.push_claim()
    assert json.loads(job.payload)["body"] == "c"
    assert not PushOutbox.objects.exists()


def test_not_while_the_agent_has_an_inbox_tab_open(bob, number, service):
    _subscribe(bob, service, Browser())
    AgentPresence.objects.create(user=bob, sockets=1)
    services.message_receive(session=number, msg=inbound())
    assert push.push_claim() == []


def test_the_assigned_agent_alone_and_unassigned_by_setting(alice, bob, number, service, settings):
    _subscribe(bob, service, Browser(), "/push/bob")
    _subscribe(alice, service, Browser(), "/push/alice")

    def notified() -> list[str]:
        PushThrottle.objects.all().delete()  # each step on its own, not throttled
        return sorted(j.endpoint.rsplit("/", 1)[1] for j in push.push_claim())

    conversation = services.message_receive(session=number, msg=inbound()).conversation
    assert notified() == ["alice", "bob"]  # unassigned: the number's owner and agents
    services.conversation_assign(conversation=conversation, assignee=alice)
    services.message_receive(session=number, msg=inbound())
    assert notified() == ["alice"]
    settings.VBCRM_PUSH_UNASSIGNED = False
    services.message_receive(session=number, msg=inbound(phone="5511900000002"))
    assert notified() == []


def test_no_subscription_costs_the_ingest_path_no_query(number, django_assert_num_queries):
    message = services.message_receive(session=number, msg=inbound())
    with django_assert_num_queries(0):
        push.push_messages_stored([message])
    assert not PushOutbox.objects.exists()


def test_a_subscription_on_a_private_address_is_refused(bob, settings):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError):
        push.push_subscription_save(
            user=bob, endpoint="http://169.254.169.254/x", p256dh=Browser().p256dh, auth="abc"
        )


def test_a_browser_subscribes_and_unsubscribes_from_the_profile_page(client, bob, settings):
    client.force_login(bob)
    page = client.get("/profile/").content.decode()
    assert f'data-key="{push_keys.public_key()}"' in page
    browser = Browser()
    endpoint = "http://127.0.0.1:9/push/abc"
    body = {"endpoint": endpoint, "keys": {"p256dh": browser.p256dh, "auth": b64(browser.auth)}}
    answer = client.post(
        "/conversations/push/subscribe/", json.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 201
    assert PushSubscription.objects.get().user == bob
    bad = client.post(
        "/conversations/push/subscribe/", json.dumps({"endpoint": endpoint}), "application/json"
    )
    assert bad.status_code == 400
    client.post("/conversations/push/unsubscribe/", json.dumps(body), "application/json")
    assert not PushSubscription.objects.exists()


def test_the_service_worker_is_served_for_the_whole_site(client):
    answer = client.get("/sw.js")
    assert answer.status_code == 200
    assert answer["Service-Worker-Allowed"] == "/"
    assert answer["Content-Type"].startswith("text/javascript")
    assert b"notificationclick" in answer.content


def test_old_news_is_not_pushed(bob, number, service):
    _subscribe(bob, service, Browser())
    services.message_receive(session=number, msg=inbound())
    later = timezone.now() + timedelta(minutes=11)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert push.push_claim() == []
    assert not PushOutbox.objects.exists()


def test_a_push_service_redirect_is_not_followed(bob, number, service):
    service.answers = [(307, {"Location": f"http://127.0.0.1:{service.port}/elsewhere"}, b"")]
    _subscribe(bob, service, Browser())
    services.message_receive(session=number, msg=inbound(text="Oi"))
    assert run_sender() == 1
    assert len(service.requests) == 1  # the redirect's target was never asked


def test_the_resolver_refuses_a_name_of_a_refused_address(settings):
    async def lookup(host: str) -> list:
        resolver = PinnedResolver()
        try:
            return await resolver.resolve(host, 80)
        finally:
            await resolver.close()

    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(OSError, match="refused address"):
        asyncio.run(lookup("localhost"))
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True
    assert asyncio.run(lookup("localhost"))
