"""Outgoing webhooks: endpoints, the events written to their outbox, and the worker's
side of that outbox (claim, record the answer, send again).

Events are written in the transaction of the change they tell of (nothing lost,
nothing sent for a rolled-back change), one bulk insert per call, and only when an
active endpoint covers the number: which endpoints cover a number is cached per
process for a few seconds, so the hot ingest path costs no query when none exist.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Conversation, Message, WebhookDelivery, WebhookEndpoint
from conversations.serializers import conversation_data, message_data
from conversations.webhook_addresses import AddressRefused, url_check
from vbcrm.types import User
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

Event = WebhookEndpoint.Event
EVENT_TYPES = frozenset(Event.values)

# --- Which endpoints cover a number (cached per process) --------------------------------

_COVER_TTL = 5.0
_covers: dict[int, tuple[list[tuple[int, frozenset[str]]], float]] = {}
_any: list[tuple[bool, float]] = []


def _any_active() -> bool:
    """Whether any endpoint is active at all (cached likewise): events whose number is
    not at hand skip even loading it when none is."""
    now = time.monotonic()
    if _any and _any[0][1] > now:
        return _any[0][0]
    found = WebhookEndpoint.objects.filter(active=True).exists()
    _any[:] = [(found, now + _COVER_TTL)]
    return found


def _endpoints_for(session_id: int) -> list[tuple[int, frozenset[str]]]:
    """The active endpoints covering a number, with their events; cached a few seconds
    (an endpoint changed in another process is seen at most that late)."""
    if not _any_active():
        return []
    now = time.monotonic()
    known = _covers.get(session_id)
    if known is not None and known[1] > now:
        return known[0]
    found = [
        (pk, frozenset(events))
        for pk, events in WebhookEndpoint.objects.filter(
            active=True, sessions__id=session_id
        ).values_list("pk", "events")
    ]
    _covers[session_id] = (found, now + _COVER_TTL)
    return found


def webhook_endpoints_changed() -> None:
    """Forget the cache (this process): an endpoint was added, changed or deleted."""
    _covers.clear()
    _any.clear()


# --- Producing events -------------------------------------------------------------------


def _api_message(message: Message) -> dict[str, Any]:
    data = message_data(message)
    if data["media_url"]:
        data["media_url"] = reverse("api:message_media", args=[message.pk])
    return data


def _envelope(event_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> str:
    body = {
        "id": str(event_id),
        "type": event_type,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))


# One event: its type, the conversation it orders under (or None) and a build of its data.
_Pending = tuple[str, int | None, Callable[[], dict[str, Any]]]


def _record(session_id: int, pending: Sequence[_Pending]) -> int:
    """Write these events of a number to the outbox of every endpoint that wants them,
    in one insert. Free (no query) when no active endpoint covers the number."""
    endpoints = _endpoints_for(session_id)
    if not endpoints or not pending:
        return 0
    now = timezone.now()
    rows: list[WebhookDelivery] = []
    for event_type, conversation_id, build in pending:
        wanted = [pk for pk, events in endpoints if event_type in events]
        if not wanted:
            continue
        event_id = uuid.uuid4()
        body = _envelope(event_id, event_type, build())
        rows.extend(
            WebhookDelivery(
                endpoint_id=pk,
                event_id=event_id,
                event_type=event_type,
                body=body,
                conversation_id=conversation_id,
                next_attempt_at=now,
            )
            for pk in wanted
        )
    if rows:
        present = _endpoints_held({row.endpoint_id for row in rows})
        rows = [row for row in rows if row.endpoint_id in present]
        WebhookDelivery.objects.bulk_create(rows)
    return len(rows)


def _endpoints_held(ids: set[int]) -> set[int]:
    """Which of these endpoints still exist, each held (``FOR KEY SHARE``) until this
    transaction ends. The cache may name one deleted since by another process: a
    delivery row for it would fail the foreign key at the commit, and with it the
    message's whole transaction. A delete that comes meanwhile waits for the commit
    (``webhook_endpoint_delete`` locks the endpoint first), then takes the new rows
    with it."""
    table = WebhookEndpoint._meta.db_table
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # the table's name from the model, every id a parameter
            f"SELECT id FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))}){lock}",  # noqa: S608
            sorted(ids),
        )
        return {pk for (pk,) in cursor.fetchall()}


def _message_event(message: Message) -> Callable[[], dict[str, Any]]:
    return lambda: {
        "message": _api_message(message),
        "conversation": conversation_data(message.conversation),
    }


def webhook_messages_stored(messages: Sequence[Message]) -> None:
    """Messages stored from WhatsApp (inside their transaction): ``message.received``
    for a customer's, ``message.sent`` for ours sent from the phone."""
    by_session: dict[int, list[_Pending]] = {}
    for message in messages:
        if message.direction == Message.Direction.INBOUND:
            event_type = Event.MESSAGE_RECEIVED
        elif message.direction == Message.Direction.OUTBOUND:
            event_type = Event.MESSAGE_SENT
        else:
            continue
        session_id = message.conversation.session_id
        by_session.setdefault(session_id, []).append(
            (event_type, message.conversation_id, _message_event(message))
        )
    for session_id, pending in by_session.items():
        _record(session_id, pending)


def webhook_message_status(message: Message) -> None:
    """One of our messages changed status: ``message.sent`` when WhatsApp took it,
    ``message.status`` for delivered, read and failed."""
    if message.direction != Message.Direction.OUTBOUND or message.status == Message.Status.PENDING:
        return
    if not _any_active():
        return
    sent = message.status == Message.Status.SENT
    event_type = Event.MESSAGE_SENT if sent else Event.MESSAGE_STATUS
    conversation = message.conversation
    _record(
        conversation.session_id,
        [(event_type, conversation.pk, _message_event(message))],
    )


def webhook_conversation(conversation: Conversation, event_type: str) -> None:
    _record(
        conversation.session_id,
        [(event_type, conversation.pk, lambda: {"conversation": conversation_data(conversation)})],
    )


def number_data(session: WhatsAppSession) -> dict[str, Any]:
    """A number as the REST API shows it (no QR or pairing code)."""
    return {
        "id": session.pk,
        "name": session.name,
        "status": session.status,
        "status_detail": session.status_detail,
        "phone_number": session.phone_number,
        "status_since": session.status_since,
    }


def webhook_number_status(session: WhatsAppSession) -> None:
    _record(session.pk, [(Event.NUMBER_STATUS, None, lambda: {"number": number_data(session)})])


# --- Endpoints ---------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _clean_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown or not chosen:
        raise ValidationError({"events": _("Choose one or more of the events listed.")})
    return chosen


def _check_url(endpoint: WebhookEndpoint) -> None:
    endpoint.full_clean()
    try:
        url_check(endpoint.url)
    except AddressRefused as exc:
        raise ValidationError({"url": str(exc)}) from None


def webhook_endpoint_create(
    *,
    owner: User,
    url: str,
    events: Iterable[str],
    sessions: Sequence[WhatsAppSession],
    description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint; its secret is made here (shown once by the caller).
    ``sessions``: the numbers it covers, already checked as the caller's to give."""
    endpoint = WebhookEndpoint(
        owner=owner,
        url=url.strip(),
        events=_clean_events(events),
        description=" ".join(description.split())[:120],
        active=active,
        secret=new_secret(),
    )
    _check_url(endpoint)
    with transaction.atomic():
        endpoint.save()
        endpoint.sessions.set(sessions)
    webhook_endpoints_changed()
    transaction.on_commit(webhook_endpoints_changed)
    logger.info("webhook endpoint created id=%s owner=%s", endpoint.pk, owner.pk)
    return endpoint


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str,
    events: Iterable[str],
    sessions: Sequence[WhatsAppSession],
    description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    endpoint.url = url.strip()
    endpoint.events = _clean_events(events)
    endpoint.description = " ".join(description.split())[:120]
    endpoint.active = active
    _check_url(endpoint)
    with transaction.atomic():
        endpoint.save()
        endpoint.sessions.set(sessions)
    webhook_endpoints_changed()
    transaction.on_commit(webhook_endpoints_changed)
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint_id = endpoint.pk
    with transaction.atomic():
        # Locked first: a message's transaction writing it a delivery (which holds it,
        # see _endpoints_held) ends before its deliveries are deleted with it.
        list(WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).values_list("pk"))
        endpoint.delete()
    webhook_endpoints_changed()
    transaction.on_commit(webhook_endpoints_changed)
    logger.info("webhook endpoint deleted id=%s", endpoint_id)


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send an event again ("send again"): a new delivery of the same event (same id,
    so a receiver that already has it can tell), after those pending of its conversation."""
    return WebhookDelivery.objects.create(
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        body=delivery.body,
        conversation_id=delivery.conversation_id,
        next_attempt_at=timezone.now(),
    )


# --- The worker's side --------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryJob:
    """What the sender needs of one delivery (plain data: no ORM off this module)."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    body: str


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: int | None = None
    latency_ms: int | None = None
    excerpt: str = ""
    error: str = ""
    permanent: bool = False  # retrying cannot help (address refused)


# A claimed delivery is the claimer's for this long: another worker takes it over after.
CLAIM_SECONDS = 120


def webhook_deliveries_claim(*, limit: int = 50, now: datetime | None = None) -> list[DeliveryJob]:
    """Claim the due deliveries that head their conversation's line (never one while an
    earlier one of the same endpoint and conversation is pending), oldest first.

    Claimed rows move their ``next_attempt_at`` past the send's longest time, so another
    worker skips them (and takes them over if this one dies mid-send)."""
    if not _any_active():
        return []  # the worker polls every second: no query while no endpoint is active
    now = now or timezone.now()
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        conversation_id=OuterRef("conversation_id"),
        status=WebhookDelivery.Status.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        ).filter(~Exists(earlier), endpoint__active=True)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            due.select_related("endpoint")
            .order_by("id")
            .only("id", "event_id", "body", "endpoint__id", "endpoint__url", "endpoint__secret")[
                :limit
            ]
        )
        if rows:
            WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).update(
                next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS)
            )
    return [
        DeliveryJob(
            id=r.pk,
            endpoint_id=r.endpoint_id,
            url=r.endpoint.url,
            secret=r.endpoint.secret,
            event_id=str(r.event_id),
            body=r.body,
        )
        for r in rows
    ]


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: exponential from 10 s, capped at an hour,
    with full jitter on the upper half (workers retrying together spread out)."""
    base = min(10.0 * 2 ** max(attempts - 1, 0), 3600.0)
    return base * random.uniform(0.5, 1.0)


def webhook_delivery_record(
    *, delivery_id: int, result: DeliveryResult, now: datetime | None = None
) -> WebhookDelivery | None:
    """Record an attempt's answer: delivered, retried later, or failed for good (refused
    address, or retried for ``VBCRM_WEBHOOK_RETRY_HOURS``)."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return delivery
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.response_status = result.status
        delivery.latency_ms = result.latency_ms
        delivery.response_excerpt = result.excerpt[:500]
        delivery.error = result.error[:300]
        give_up_at = delivery.created_at + timedelta(hours=settings.VBCRM_WEBHOOK_RETRY_HOURS)
        if result.ok:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = now
        else:
            retry_at = now + timedelta(seconds=retry_delay(delivery.attempts))
            if result.permanent or retry_at > give_up_at:
                delivery.status = WebhookDelivery.Status.FAILED
                logger.info("webhook delivery failed id=%s", delivery.pk)
            else:
                delivery.next_attempt_at = retry_at
        delivery.save()
    return delivery
