"""Reads of API tokens."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from vbcrm.models import ApiToken
from vbcrm.types import User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's tokens, live and revoked, newest first."""
    return ApiToken.objects.filter(user=user)


def token_get(*, user: User, token_id: int) -> ApiToken:
    """One of the user's own tokens; ``DoesNotExist`` for anyone else's."""
    return ApiToken.objects.get(pk=token_id, user=user)


def token_find_active(*, token: str) -> ApiToken | None:
    """The live token with this secret, with its (active) user; ``None`` otherwise.

    Looked up by hash through a unique index, so the secret is never compared
    character by character (no timing leak).
    """
    if not token or len(token) > 256:
        return None
    return (
        ApiToken.objects.select_related("user")
        .filter(token_hash=token_hash(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
