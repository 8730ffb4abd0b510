"""Sending web pushes (pywebpush: the payload encrypted for the browser, signed with
our VAPID key). No ORM here: the worker claims and records through
conversations.services.push on its database threads."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from django.conf import settings
from pywebpush import WebPushException, webpush_async

from conversations.push_keys import vapid
from conversations.services.push import PushJob, push_claim, push_results
from conversations.webhook_addresses import AddressRefused, address_allowed, resolve

logger = logging.getLogger(__name__)

TTL_SECONDS = 3600  # a notification older than an hour is not worth showing
TIMEOUT_SECONDS = 10.0


def _check(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    resolve(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


class PinnedResolver(ThreadedResolver):
    """The push connections' resolver: a host name whose addresses include one that
    pushes may not reach (loopback, private, metadata: webhook_addresses) resolves to
    nothing, so the address checked is the address connected to, whatever DNS answers
    between the check and the connection."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        for row in found:
            if not address_allowed(ipaddress.ip_address(row["host"].split("%", 1)[0])):
                raise OSError(f"push endpoint {host} resolves to a refused address")
        return found


def push_session() -> aiohttp.ClientSession:
    """The HTTP session pushes go out on (DNS answers checked: ``PinnedResolver``)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PinnedResolver()))


class _NoRedirects:
    """What pywebpush calls of its session (``post``), never following a redirect: a
    push service answers, it does not send us elsewhere (a redirect to an address
    literal would skip the resolver's check)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.session.post(url, allow_redirects=False, **kwargs)


async def push_send(session: aiohttp.ClientSession, job: PushJob) -> int | None:
    """Send one push; the HTTP status (None: not sent: refused address, network error)."""
    try:
        await asyncio.get_running_loop().run_in_executor(None, _check, job.endpoint)
    except AddressRefused:
        logger.info("push endpoint refused subscription=%s", job.subscription_id)
        return None
    try:
        response: Any = await webpush_async(
            subscription_info={
                "endpoint": job.endpoint,
                "keys": {"p256dh": job.p256dh, "auth": job.auth},
            },
            data=job.payload,
            vapid_private_key=vapid(),
            vapid_claims={"sub": settings.VBCRM_VAPID_SUBJECT},
            ttl=TTL_SECONDS,
            timeout=TIMEOUT_SECONDS,
            aiohttp_session=_NoRedirects(session),
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status", None)
        return int(status) if status is not None else None
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    return int(response.status)


DbCall = Callable[..., Awaitable[Any]]


class PushSender:
    """The worker's push loop: claim the messages to notify, send each browser its
    push, forget the browsers the push service says are gone."""

    POLL_SECONDS = 1.0

    def __init__(self, db: DbCall) -> None:
        self.db = db

    async def run_once(self, session: aiohttp.ClientSession) -> int:
        jobs: list[PushJob] = await self.db(push_claim)
        if jobs:
            statuses = await asyncio.gather(*(push_send(session, job) for job in jobs))
            results = [(j.subscription_id, s) for j, s in zip(jobs, statuses, strict=True)]
            await self.db(push_results, results=results)
        return len(jobs)

    async def run(self, stopping: asyncio.Event) -> None:
        async with push_session() as session:
            while not stopping.is_set():
                try:
                    await self.run_once(session)
                except Exception:
                    logger.exception("push sender failed")
                try:
                    await asyncio.wait_for(stopping.wait(), self.POLL_SECONDS)
                except TimeoutError:
                    pass
