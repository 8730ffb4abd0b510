from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from conversations import services
from conversations.models import Message
from tests.factories import inbound

pytestmark = pytest.mark.django_db

HEALTH_URLS = [
    "/api/whatsapp/health",
    "/api/baileys-simple/health",
    "/api/whatsapp-realtime/health",
]


@pytest.mark.parametrize("path", HEALTH_URLS)
def test_health_is_public_and_ok(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {k: v["ok"] for k, v in body["checks"].items()} == {
        "web": True,
        "database": True,
        "channel_layer": True,
    }


class _DeadLayer:
    async def new_channel(self, prefix: str = "") -> str:
        return prefix + "x"

    async def send(self, channel: str, message: dict) -> None:
        raise ConnectionError("redis://:secret-password@10.0.0.5:6379 refused")


@pytest.mark.parametrize("path", HEALTH_URLS)
def test_health_is_503_when_the_channel_layer_fails_and_reveals_no_secret(
    client, monkeypatch, path
):
    monkeypatch.setattr("realtime.layer.get_channel_layer", lambda: _DeadLayer())
    response = client.get(path)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "unhealthy"
    checks = body["detail"]["checks"]
    assert checks["channel_layer"] == {"ok": False, "ms": None, "error": "ConnectionError"}
    assert checks["database"]["ok"] is True
    assert "secret-password" not in response.content.decode()


def test_health_is_503_when_the_channel_layer_does_not_answer(client, monkeypatch):
    class _SilentLayer(_DeadLayer):
        async def send(self, channel: str, message: dict) -> None:
            return None

        async def receive(self, channel: str) -> dict:
            import asyncio

            await asyncio.sleep(60)
            return {}

    monkeypatch.setattr("vbcrm.api.LAYER_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr("realtime.layer.get_channel_layer", lambda: _SilentLayer())
    response = client.get(HEALTH_URLS[0])
    assert response.status_code == 503
    assert response.json()["detail"]["checks"]["channel_layer"]["error"] == "TimeoutError"


def test_health_is_503_when_the_database_fails(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("no database")

    broken.__name__ = "check_database"
    monkeypatch.setattr("vbcrm.api.check_database", broken)
    response = client.get(HEALTH_URLS[0])
    assert response.status_code == 503
    assert response.json()["detail"]["checks"]["database"]["ok"] is False


# --- Metrics -------------------------------------------------------------------------------


def test_metrics_do_not_exist_without_a_configured_token(client, settings):
    settings.VBCRM_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_need_the_token(client, settings):
    settings.VBCRM_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    text = response.content.decode()
    for name in (
        "vbcrm_messages_in_total",
        "vbcrm_messages_out_total",
        "vbcrm_send_failures_total",
        "vbcrm_child_restarts_total",
        "vbcrm_connected_numbers",
        "vbcrm_socket_clients",
        "django_http_requests_total_by_method_total",
    ):
        assert name in text, name


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_messages_in_counts_new_messages_not_replays(number):
    before = _value("vbcrm_messages_in_total")
    msg = inbound(message_id="ONCE")
    services.message_receive(session=number, msg=msg)
    services.message_receive(session=number, msg=msg)
    assert _value("vbcrm_messages_in_total") == before + 1


def test_messages_out_and_send_failures(number, bob):
    services.message_receive(session=number, msg=inbound())
    conversation = Message.objects.get().conversation
    sent = services.message_queue_outbound(user=bob, conversation=conversation, text="a")
    failed = services.message_queue_outbound(user=bob, conversation=conversation, text="b")
    out, failures = _value("vbcrm_messages_out_total"), _value("vbcrm_send_failures_total")
    services.outbox_sent(message_id=sent.pk, wa_id="", timestamp=datetime.now(UTC))
    services.outbox_sent(message_id=sent.pk, wa_id="", timestamp=datetime.now(UTC))
    assert _value("vbcrm_messages_out_total") == out + 1
    services.outbox_failed(message_id=failed.pk, error="boom", transient=True)
    assert _value("vbcrm_send_failures_total") == failures  # will be retried: not a failure yet
    services.outbox_failed(message_id=failed.pk, error="boom", transient=False)
    assert _value("vbcrm_send_failures_total") == failures + 1


# --- The API's edges ---------------------------------------------------------------------------


def test_the_schema_and_the_docs_page_are_served(client):
    schema = client.get("/api/openapi.json").json()
    assert "/api/whatsapp/conversations/{conversation_id}/send" in schema["paths"]
    assert "ErrorOut" in schema["components"]["schemas"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_unknown_api_urls_and_methods_answer_in_the_error_shape(client, alice):
    client.force_login(alice)
    response = client.get("/api/whatsapp/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    response = client.patch("/api/whatsapp/numbers")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_an_unexpected_error_is_a_500_in_the_error_shape(alice, monkeypatch):
    from tests.api.conftest import TokenClient, token_for

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("whatsapp.selectors.session_list", explode)
    client = TokenClient(token_for(alice), raise_request_exception=False)
    response = client.get("/api/whatsapp/numbers")
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "detail": "Something went wrong on our side.",
    }


def test_pages_outside_the_api_keep_their_html_404(client, alice):
    client.force_login(alice)
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_daphne_leaves_multipart_bodies_to_django(monkeypatch):
    # Twisted would parse each multipart body a second time, in memory, and answer a
    # malformed one with a bare 400 that the API's error shape never reaches.
    from daphne.http_protocol import WebRequest
    from twisted.web import http

    import vbcrm.asgi  # noqa: F401  (applies the tweak)

    seen: dict = {}

    def fake_init(self, *args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(http.Request, "__init__", fake_init)
    with pytest.raises(RuntimeError):
        WebRequest(object())
    assert seen["parsePOSTFormSubmission"] is False
