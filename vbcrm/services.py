"""Every write to API tokens goes through here (profile page, admin, command, API auth)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from vbcrm.errors import field_error
from vbcrm.models import ApiToken
from vbcrm.selectors import token_hash
from vbcrm.types import User

logger = logging.getLogger(__name__)

# last_used_at moves at most this often: a busy client must not cost a write per request.
TOKEN_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    # The plain secret. Shown to the user once and never stored.
    plain: str


def token_create(*, user: User, name: str) -> NewToken:
    name = " ".join((name or "").split())
    if not name:
        raise field_error("name", _("Give the token a name."), "required")
    if len(name) > 100:
        raise field_error("name", _("The name is too long (100 characters at most)."))
    plain = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=plain[:8], token_hash=token_hash(plain)
    )
    logger.info("api token created id=%s user=%s", token.pk, user.pk)
    return NewToken(token=token, plain=plain)


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token for good (revoking twice keeps the first time)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        logger.info("api token revoked id=%s user=%s", token.pk, token.user_id)
    return token


def token_touch(*, token: ApiToken) -> None:
    """Record that the token was just used, at most once a minute.

    The condition is in the UPDATE itself, so concurrent requests write once.
    """
    now = timezone.now()
    if token.last_used_at and token.last_used_at > now - timedelta(seconds=TOKEN_TOUCH_SECONDS):
        return
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True)
        | Q(last_used_at__lte=now - timedelta(seconds=TOKEN_TOUCH_SECONDS)),
        pk=token.pk,
    ).update(last_used_at=now)
    token.last_used_at = now
