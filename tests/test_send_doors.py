"""The three doors a reply comes in by (the page, the REST API, the socket) refuse the same
bad input with the same error code: they all call one send service."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from conversations import services
from conversations.models import Message
from tests.factories import inbound
from vbcrm.asgi import application
from vbcrm.services import token_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _apart(settings):
    # A cache of its own (the send rate counters) and the in-memory layer (one process).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"doors-{uuid.uuid4()}",
        }
    }
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _page(user, conversation_id: int, body: dict) -> str:
    client = Client()
    client.force_login(user)
    data = {k: v for k, v in body.items() if k != "reply_to_id"}
    if "reply_to_id" in body:
        data["reply_to"] = body["reply_to_id"]
    response = client.post(f"/conversations/{conversation_id}/send/", data)
    assert response.status_code >= 400, response.content
    return response.json()["error"]["code"]


def _api(user, conversation_id: int, body: dict) -> str:
    token = token_create(user=user, name="doors").plain
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        f"/api/whatsapp/conversations/{conversation_id}/send",
        json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code >= 400, response.content
    payload = response.json()
    if isinstance(payload["detail"], list):
        return payload["detail"][0]["code"]
    return payload["error"]


@async_to_sync
async def _socket(user, conversation_id: int, body: dict) -> str:
    client = Client()
    await client.aforce_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _code = await communicator.connect(timeout=5)
    assert connected
    try:
        frame = {"type": "send_message", "conversation_id": conversation_id, **body}
        await communicator.send_json_to(frame)
        for _ in range(20):
            for line in (await communicator.receive_from(timeout=5)).split("\n"):
                answer = json.loads(line)
                if answer["type"] == "error":
                    return answer["code"]
                assert answer["type"] != "message_queued", answer
        raise AssertionError("no error frame")
    finally:
        await communicator.disconnect()


DOORS = {"page": _page, "api": _api, "socket": _socket}


@pytest.fixture
def elsewhere(number):
    """A message of another conversation on the same number."""
    return services.message_receive(session=number, msg=inbound(phone="5511900000009", text="x"))


CASES = {
    "a NUL character": ({"text": "a\x00b"}, "invalid"),
    "too long": ({"text": "x" * 5000}, "too_long"),
    "empty": ({"text": "   "}, "empty"),
    "a quote from another conversation": ({"text": "re", "reply_to_id": "elsewhere"}, "invalid"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_door_refuses_bad_input_with_the_same_code(case, conversation, elsewhere, bob):
    body, expected = CASES[case]
    if body.get("reply_to_id") == "elsewhere":
        body = {**body, "reply_to_id": elsewhere.pk}
    codes = {door: send(bob, conversation.pk, body) for door, send in DOORS.items()}
    assert codes == dict.fromkeys(DOORS, expected)
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


def test_every_door_refuses_past_the_send_rate_with_the_same_code(conversation, bob, settings):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 1
    services.message_send(user=bob, conversation=conversation, text="the one allowed")
    codes = {door: send(bob, conversation.pk, {"text": "one more"}) for door, send in DOORS.items()}
    assert codes == dict.fromkeys(DOORS, "rate_limited")
    assert Message.objects.filter(direction=Message.Direction.OUTBOUND).count() == 1
