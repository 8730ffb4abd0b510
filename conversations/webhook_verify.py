"""Verify a VB CRM webhook delivery: standard library only, copy it into your receiver.

    from webhook_verify import WebhookError, verify

    try:
        event = verify(secret, request.body, request.headers)
    except WebhookError:
        return 400
    if already_seen(event["id"]):  # deliveries are at least once: dedupe by event id
        return 200

A delivery is refused when its signature does not match the secret, or when its
timestamp is more than ``tolerance`` seconds away from now (a captured delivery
replayed later), or when it lacks the headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

TOLERANCE_SECONDS = 300


class WebhookError(Exception):
    """The delivery is not authentic, or too old (a replay)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise WebhookError(f"missing header {name}")


def verify(
    secret: str,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Check the ``X-VBCRM-Signature`` and ``X-VBCRM-Timestamp`` headers of a delivery
    and return its event (the parsed body). Raises WebhookError otherwise."""
    raw = body.encode() if isinstance(body, str) else body
    timestamp = _header(headers, "X-VBCRM-Timestamp")
    signature = _header(headers, "X-VBCRM-Signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookError("bad timestamp") from None
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        raise WebhookError("timestamp outside the tolerance (replayed?)")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    # The header may carry several signatures (e.g. during a secret rotation).
    given = [part.strip()[3:] for part in signature.split(",") if part.strip().startswith("v1=")]
    if not any(hmac.compare_digest(expected.hexdigest(), g) for g in given):
        raise WebhookError("signature mismatch")
    event: dict[str, Any] = json.loads(raw)
    return event
