"""Sending webhook deliveries: the address check (no loopback, private, link-local or
metadata addresses), the signature, and one bounded HTTP attempt. No ORM here: the
worker claims and records through conversations.services.webhooks on its database
threads, and awaits :func:`deliver` on its event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from conversations.services.webhooks import (
    DeliveryJob,
    DeliveryResult,
    webhook_deliveries_claim,
    webhook_delivery_record,
)
from conversations.webhook_addresses import AddressRefused, resolve

logger = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1"
USER_AGENT = "VBCRM-Webhooks/1"
MAX_RESPONSE_BYTES = 4096
EXCERPT_CHARS = 500


def sign(secret: str, timestamp: int, body: str) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def headers_for(job: DeliveryJob, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-VBCRM-Event-Id": job.event_id,
        "X-VBCRM-Timestamp": str(timestamp),
        "X-VBCRM-Signature": sign(job.secret, timestamp, job.body),
    }


def _pinned(url: str) -> tuple[str, str, dict[str, Any]]:
    """The URL with its host replaced by a checked address (so a DNS change between the
    check and the connection cannot move it), the Host header, and the TLS name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port)[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    return urlunsplit(parts._replace(netloc=netloc)), host_header, extensions


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")[:EXCERPT_CHARS]


async def deliver(client: httpx.AsyncClient, job: DeliveryJob) -> DeliveryResult:
    """One attempt: POST the signed body to the checked address, read at most
    MAX_RESPONSE_BYTES of the answer, follow no redirect. A 2xx is delivered."""
    loop = asyncio.get_running_loop()
    try:
        # getaddrinfo blocks: off the event loop.
        target, host_header, extensions = await loop.run_in_executor(None, _pinned, job.url)
    except AddressRefused as exc:
        return DeliveryResult(ok=False, error=str(exc), permanent=True)
    headers = {**headers_for(job, int(time.time())), "Host": host_header}
    started = time.monotonic()
    timeout = settings.VBCRM_WEBHOOK_TIMEOUT_SECONDS
    try:
        async with asyncio.timeout(timeout + 1):
            request = client.build_request(
                "POST", target, content=job.body.encode(), headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                raw = b""
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        latency = int((time.monotonic() - started) * 1000)
        error = _("Timed out.") if isinstance(exc, TimeoutError | httpx.TimeoutException) else ""
        return DeliveryResult(
            ok=False, latency_ms=latency, error=error or f"{type(exc).__name__}: {exc}"[:300]
        )
    latency = int((time.monotonic() - started) * 1000)
    status = response.status_code
    error = ""
    if response.is_redirect:
        error = _("Answered with a redirect; redirects are not followed.")
    elif not response.is_success:
        error = _("Answered HTTP %(status)d.") % {"status": status}
    return DeliveryResult(
        ok=response.is_success,
        status=status,
        latency_ms=latency,
        excerpt=_excerpt(raw[:MAX_RESPONSE_BYTES]),
        error=error,
    )


def client_new() -> httpx.AsyncClient:
    timeout = settings.VBCRM_WEBHOOK_TIMEOUT_SECONDS
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the address check must hold
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=0),
    )


DbCall = Callable[..., Awaitable[Any]]


class WebhookSender:
    """The worker's webhook loop: claim the due deliveries, send them concurrently (at
    most one per conversation line at a time, by the claim's rule), record each answer.
    Claims go on while earlier sends wait, so a slow or dead receiver delays only its
    own lines; ``MAX_IN_FLIGHT`` bounds the sends at once."""

    POLL_SECONDS = 1.0
    MAX_IN_FLIGHT = 50

    def __init__(self, db: DbCall) -> None:
        self.db = db
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def claim(self) -> int:
        """Claim what is due (within the in-flight bound) and start sending it."""
        room = self.MAX_IN_FLIGHT - len(self._tasks)
        if room <= 0:
            return 0
        jobs: list[DeliveryJob] = await self.db(webhook_deliveries_claim, limit=room)
        if jobs and self._client is None:
            self._client = client_new()
        for job in jobs:
            task = asyncio.create_task(self._one(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(jobs)

    async def run_once(self) -> int:
        """Claim and wait for those sends (tests, and one pass at a time)."""
        count = await self.claim()
        await self.drain()
        return count

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _one(self, job: DeliveryJob) -> None:
        assert self._client is not None
        try:
            result = await deliver(self._client, job)
        except Exception as exc:  # one bad delivery must not stop the others
            logger.exception("webhook delivery crashed id=%s", job.id)
            result = DeliveryResult(ok=False, error=f"{type(exc).__name__}"[:300])
        await self.db(webhook_delivery_record, delivery_id=job.id, result=result)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drain()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                try:
                    claimed = await self.claim()
                except Exception:
                    logger.exception("webhook sender failed")
                    claimed = 0
                if claimed and len(self._tasks) < self.MAX_IN_FLIGHT:
                    continue  # more may be due right now
                try:
                    await asyncio.wait_for(stopping.wait(), self.POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            await self.close()
