"""JSON nested too deep (a body, a cursor) is a bad request in the API's error shape, not
a 500 (Python's decoder gives up with RecursionError past about a thousand levels)."""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import url

pytestmark = pytest.mark.django_db

DEEP = "[" * 1500


def test_a_reply_body_nested_too_deep_is_a_400(conversation, as_alice):
    response = as_alice.post(
        url(f"/conversations/{conversation.pk}/send"), data=DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_a_body_the_framework_parses_nested_too_deep_is_a_400(as_alice):
    response = as_alice.post(url("/numbers"), data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_a_cursor_nested_too_deep_is_a_400(conversation, as_alice):
    cursor = base64.urlsafe_b64encode(DEEP.encode()).decode().rstrip("=")
    response = as_alice.get(url("/conversations"), {"cursor": cursor})
    assert response.status_code == 400
    assert "error" in response.json()
