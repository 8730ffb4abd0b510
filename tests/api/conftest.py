"""Fixtures of the REST API tests: tokens, a conversation, a client that sends a token."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from vbcrm.services import token_create


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # The send rate counters live in the cache: a fresh one per test keeps them apart
    # (user ids repeat across tests on SQLite).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-tests-{uuid.uuid4()}",
        }
    }


class TokenClient(Client):
    """A test client that authenticates every request with an API token."""

    def __init__(self, token: str, **kwargs) -> None:
        super().__init__(HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)
        self.token = token


def token_for(user) -> str:
    return token_create(user=user, name="tests").plain


@pytest.fixture
def as_alice(alice) -> TokenClient:
    return TokenClient(token_for(alice))


@pytest.fixture
def as_bob(bob) -> TokenClient:
    return TokenClient(token_for(bob))


@pytest.fixture
def as_charlie(charlie) -> TokenClient:
    return TokenClient(token_for(charlie))


def url(path: str) -> str:
    return "/api/whatsapp" + path
