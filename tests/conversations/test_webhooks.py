"""Outgoing webhooks: events written with the change, signed deliveries a receiver
verifies, replays refused, retries with backoff, order per conversation, and the
address rules (no loopback, private, metadata or redirect)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message, WebhookDelivery, WebhookEndpoint
from conversations.services import webhooks
from conversations.webhook_addresses import AddressRefused, address_allowed, url_check
from conversations.webhook_delivery import client_new, deliver
from conversations.webhook_verify import WebhookError, verify
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db

Event = WebhookEndpoint.Event


class Receiver:
    """A webhook receiver on loopback: records each request; answers from ``answers``
    (status, headers, body), then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {"headers": dict(self.headers.items()), "body": self.rfile.read(length)}
                )
                status, headers, body = (
                    receiver.answers.pop(0) if receiver.answers else (200, {}, b"ok")
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def allow_private(settings):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True


def _endpoint(owner, number, url: str, events=(Event.MESSAGE_RECEIVED,)) -> WebhookEndpoint:
    return webhooks.webhook_endpoint_create(
        owner=owner, url=url, events=list(events), sessions=[number]
    )


def send_due(now=None) -> list[webhooks.DeliveryResult]:
    """One pass of the worker's sender, here and now."""
    jobs = webhooks.webhook_deliveries_claim(now=now)

    async def go() -> list[webhooks.DeliveryResult]:
        async with client_new() as client:
            return [await deliver(client, job) for job in jobs]

    results = asyncio.run(go())
    for job, result in zip(jobs, results, strict=True):
        webhooks.webhook_delivery_record(delivery_id=job.id, result=result, now=now)
    return results


def test_it_sends_a_signed_event_the_receiver_verifies(allow_private, receiver, alice, number):
    endpoint = _endpoint(alice, number, receiver.url)
    message = services.message_receive(session=number, msg=inbound(text="Olá, preciso de ajuda"))
    assert send_due()[0].ok

    [request] = receiver.requests
    event = verify(endpoint.secret, request["body"], request["headers"])
    assert event["type"] == "message.received"
    assert event["id"] == request["headers"]["X-VBCRM-Event-Id"]
    assert event["data"]["message"]["id"] == message.pk
    assert event["data"]["message"]["body"] == "Olá, preciso de ajuda"
    assert event["data"]["conversation"]["id"] == message.conversation_id
    assert event["data"]["conversation"]["contact"]["phone"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.response_status == 200
    assert delivery.response_excerpt == "ok"
    assert delivery.latency_ms is not None


def test_the_receiver_helper_refuses_replays_and_forgeries(allow_private, receiver, alice, number):
    endpoint = _endpoint(alice, number, receiver.url)
    services.message_receive(session=number, msg=inbound())
    send_due()
    request = receiver.requests[0]
    sent_at = int(request["headers"]["X-VBCRM-Timestamp"])
    verify(endpoint.secret, request["body"], request["headers"], now=sent_at + 299)
    with pytest.raises(WebhookError, match="tolerance"):  # the same delivery, 6 minutes on
        verify(endpoint.secret, request["body"], request["headers"], now=sent_at + 360)
    with pytest.raises(WebhookError, match="signature"):
        verify("whsec_other", request["body"], request["headers"])
    with pytest.raises(WebhookError, match="signature"):
        verify(endpoint.secret, request["body"].replace(b"hello", b"hallo"), request["headers"])
    with pytest.raises(WebhookError, match="signature"):  # a fresh timestamp on an old body
        headers = {**request["headers"], "X-VBCRM-Timestamp": str(sent_at + 60)}
        verify(endpoint.secret, request["body"], headers, now=sent_at + 60)


def test_no_endpoint_costs_the_ingest_path_no_query(number, django_assert_num_queries):
    message = services.message_receive(session=number, msg=inbound())
    with django_assert_num_queries(0):
        webhooks.webhook_messages_stored([message])
        webhooks.webhook_message_status(message)
    assert not WebhookDelivery.objects.exists()


def test_a_batch_is_one_insert_and_a_rolled_back_change_sends_nothing(allow_private, alice, number):
    _endpoint(alice, number, "http://127.0.0.1:9/hook")
    msgs = [inbound(text="a"), inbound(text="b", phone="5511988880002"), inbound(text="c")]
    services.message_receive_batch(session=number, msgs=msgs)
    assert WebhookDelivery.objects.filter(event_type="message.received").count() == 3

    with pytest.raises(RuntimeError), transaction.atomic():
        services.message_receive(session=number, msg=inbound(text="rolled back"))
        raise RuntimeError
    assert WebhookDelivery.objects.filter(event_type="message.received").count() == 3


def test_only_the_events_and_numbers_chosen_and_active_endpoints(allow_private, alice, number):
    other = whatsapp_services.session_create(owner=alice, name="Sales")
    _endpoint(alice, other, "http://127.0.0.1:9/other")
    closed = _endpoint(alice, number, "http://127.0.0.1:9/closed", [Event.CONVERSATION_CLOSED])
    off = _endpoint(alice, number, "http://127.0.0.1:9/off")
    webhooks.webhook_endpoint_update(
        endpoint=off, url=off.url, events=off.events, sessions=[number], active=False
    )
    conversation = services.message_receive(session=number, msg=inbound()).conversation
    assert not WebhookDelivery.objects.exists()
    services.conversation_set_status(conversation=conversation, status=Conversation.Status.CLOSED)
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.endpoint, delivery.event_type) == (closed, "conversation.closed")
    assert json.loads(delivery.body)["data"]["conversation"]["status"] == "closed"


def test_message_conversation_and_number_events(allow_private, alice, bob, number):
    _endpoint(alice, number, "http://127.0.0.1:9/all", Event.values)
    conversation = services.message_receive(session=number, msg=inbound()).conversation
    reply = services.message_queue_outbound(user=bob, conversation=conversation, text="Oi")
    services.outbox_sent(message_id=reply.pk, wa_id="WA1", timestamp=timezone.now())
    services.message_receipt(session=number, message_ids=["WA1"], status="read")
    whatsapp_services.session_on_qr(session_id=number.pk, code="2@abc")
    whatsapp_services.session_on_qr(session_id=number.pk, code="2@def")  # no move: no event
    types = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types[:2] == ["conversation.created", "message.received"]
    assert "message.sent" in types and "message.status" in types
    assert types.count("number.status") == 1
    status = WebhookDelivery.objects.get(event_type="message.status")
    assert json.loads(status.body)["data"]["message"]["status"] == Message.Status.READ


def test_it_retries_a_failing_receiver_with_backoff_then_delivers(
    allow_private, receiver, alice, number
):
    _endpoint(alice, number, receiver.url)
    receiver.answers = [(500, {}, b"down"), (503, {}, b"still down")]
    services.message_receive(session=number, msg=inbound())
    now = timezone.now()
    assert not send_due(now)[0].ok
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1 and delivery.response_status == 500
    first_wait = (delivery.next_attempt_at - now).total_seconds()
    assert 5 <= first_wait <= 10  # 10 s, jittered
    assert send_due(now + timedelta(seconds=1)) == []  # not yet due

    later = now + timedelta(seconds=11)
    assert not send_due(later)[0].ok
    delivery.refresh_from_db()
    assert 10 <= (delivery.next_attempt_at - later).total_seconds() <= 20  # doubled

    assert send_due(later + timedelta(seconds=21))[0].ok
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 3
    assert len({r["headers"]["X-VBCRM-Event-Id"] for r in receiver.requests}) == 1


def test_it_gives_up_after_the_retry_hours(allow_private, receiver, alice, number, settings):
    settings.VBCRM_WEBHOOK_RETRY_HOURS = 24
    _endpoint(alice, number, receiver.url)
    receiver.answers = [(500, {}, b"")]
    services.message_receive(session=number, msg=inbound())
    send_due(timezone.now() + timedelta(hours=23, minutes=59, seconds=55))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "500" in delivery.error


def test_it_keeps_order_per_conversation(allow_private, receiver, alice, number):
    _endpoint(alice, number, receiver.url)
    receiver.answers = [(500, {}, b"")]
    first = services.message_receive(session=number, msg=inbound(text="1"))
    services.message_receive(session=number, msg=inbound(text="2"))
    elsewhere = services.message_receive(session=number, msg=inbound(text="x", phone="551100"))

    now = timezone.now()
    send_due(now)  # "1" fails; "x" (another conversation) goes; "2" waits behind "1"
    bodies = [json.loads(r["body"])["data"]["message"]["body"] for r in receiver.requests]
    assert sorted(bodies) == ["1", "x"]
    assert first.conversation_id != elsewhere.conversation_id
    # however late, "2" never overtakes "1": only "1" is claimed
    [job] = webhooks.webhook_deliveries_claim(now=now + timedelta(minutes=5))
    assert json.loads(job.body)["data"]["message"]["body"] == "1"

    send_due(now + timedelta(minutes=10))  # claimed one expires; "1" now delivered
    send_due(now + timedelta(minutes=10))  # then "2"
    bodies = [json.loads(r["body"])["data"]["message"]["body"] for r in receiver.requests]
    assert bodies[-2:] == ["1", "2"]
    assert not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists()


def test_send_again_sends_the_same_event_once_more(allow_private, receiver, alice, number):
    _endpoint(alice, number, receiver.url)
    services.message_receive(session=number, msg=inbound())
    send_due()
    again = webhooks.webhook_delivery_resend(delivery=WebhookDelivery.objects.get())
    send_due()
    again.refresh_from_db()
    assert again.status == WebhookDelivery.Status.DELIVERED
    assert [r["body"] for r in receiver.requests][0] == receiver.requests[1]["body"]


# --- Addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.0.1", "169.254.169.254", "::1",
     "fd00:ec2::254", "fe80::1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1",  # noqa: S104
     "100.64.0.1"],
)  # fmt: skip
def test_private_addresses_are_refused(address):
    assert not address_allowed(ipaddress.ip_address(address))


def test_public_addresses_pass():
    assert address_allowed(ipaddress.ip_address("93.184.215.14"))
    assert address_allowed(ipaddress.ip_address("2606:4700::6810:84e5"))


def test_registration_refuses_loopback_and_private_urls():
    for url in ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.0.0.1/", "ftp://a/"]:
        with pytest.raises(AddressRefused):
            url_check(url)


def test_delivery_time_refuses_a_loopback_receiver(receiver, alice, number, settings):
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True
    _endpoint(alice, number, receiver.url)  # allowed then (say an on-premise install)
    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = False  # ... and not any more
    services.message_receive(session=number, msg=inbound())
    result = send_due()[0]
    assert not result.ok and result.permanent
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "not allowed" in delivery.error


def test_redirects_are_not_followed(allow_private, receiver, alice, number):
    target = Receiver()
    try:
        _endpoint(alice, number, receiver.url)
        receiver.answers = [(307, {"Location": target.url}, b"")]
        services.message_receive(session=number, msg=inbound())
        result = send_due()[0]
        assert not result.ok and result.status == 307
        assert "redirect" in result.error
        assert target.requests == []
    finally:
        target.close()


def test_it_connects_to_the_checked_address_keeping_the_host(
    allow_private, receiver, alice, number
):
    _endpoint(alice, number, f"http://localhost:{receiver.port}/hook")
    services.message_receive(session=number, msg=inbound())
    assert send_due()[0].ok
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"


def test_a_large_answer_is_read_only_in_part(allow_private, receiver, alice, number):
    _endpoint(alice, number, receiver.url)
    receiver.answers = [(200, {}, b"x" * 5_000_000)]
    services.message_receive(session=number, msg=inbound())
    result = send_due()[0]
    assert result.ok
    assert len(result.excerpt) == 500


def test_a_dead_receiver_times_out(allow_private, alice, number, settings):
    settings.VBCRM_WEBHOOK_TIMEOUT_SECONDS = 0.5
    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        _endpoint(alice, number, f"http://127.0.0.1:{silent.getsockname()[1]}/")
        services.message_receive(session=number, msg=inbound())
        started = time.monotonic()
        result = send_due()[0]
        assert time.monotonic() - started < 3
        assert not result.ok and not result.permanent
    finally:
        silent.close()


def test_an_endpoint_on_a_private_address_is_refused_when_saved(alice, number):
    with pytest.raises(ValidationError) as exc:
        _endpoint(alice, number, "http://169.254.169.254/latest/meta-data/")
    assert "not allowed" in str(exc.value.message_dict["url"])
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_deleted_by_another_process_loses_no_message(allow_private, alice, number):
    """This process still has the endpoint cached (for a few seconds) when another
    process deletes it: the next message is stored all the same, with no delivery row
    for the endpoint gone (whose foreign key would have failed the message's whole
    transaction at its commit)."""
    from django.db import connection

    gone = _endpoint(alice, number, "http://127.0.0.1:9/gone")
    kept = _endpoint(alice, number, "http://127.0.0.1:9/kept")
    services.message_receive(session=number, msg=inbound(text="cached now"))
    assert WebhookDelivery.objects.filter(endpoint=gone).count() == 1
    WebhookEndpoint.objects.filter(pk=gone.pk).delete()  # not through this process's cache
    message = services.message_receive(session=number, msg=inbound(text="after the delete"))
    connection.check_constraints()  # the foreign keys a commit would check
    assert Message.objects.filter(pk=message.pk).exists()
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [kept.pk] * 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_waits_for_a_message_writing_it_a_delivery(
    postgres_only, allow_private, alice, number
):
    """A message's transaction holds the endpoints it writes deliveries for: a delete
    that comes meanwhile waits for its commit, then takes those deliveries with it;
    both succeed."""
    from django.db import connection

    endpoint = _endpoint(alice, number, "http://127.0.0.1:9/hook")
    written, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def receive() -> None:
        try:
            with transaction.atomic():
                outcome["message"] = services.message_receive(
                    session=number, msg=inbound(text="in flight")
                )
                written.set()
                release.wait(10)
        except Exception as exc:  # noqa: BLE001 (reported to the test below)
            outcome["receive"] = exc
        finally:
            connection.close()

    def delete() -> None:
        try:
            webhooks.webhook_endpoint_delete(endpoint=WebhookEndpoint.objects.get(pk=endpoint.pk))
            outcome["deleted"] = time.monotonic()
        except Exception as exc:  # noqa: BLE001
            outcome["delete"] = exc
        finally:
            connection.close()

    receiver_thread = threading.Thread(target=receive)
    receiver_thread.start()
    assert written.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    deleter.join(0.5)
    assert deleter.is_alive()  # waiting for the message's transaction
    committed = time.monotonic()
    release.set()
    receiver_thread.join(10)
    deleter.join(10)
    assert "receive" not in outcome and "delete" not in outcome, outcome
    assert outcome["deleted"] >= committed  # type: ignore[operator]
    message = outcome["message"]
    assert Message.objects.filter(pk=message.pk).exists()  # type: ignore[attr-defined]
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
