"""Web push: agents' browser subscriptions, and notifying them of customers' messages.

The message's transaction writes one outbox row per message (only when some browser is
subscribed at all: cached per process for a few seconds, so ingest costs no query
otherwise). The worker takes the rows and decides whom to notify: the conversation's
agent, or when nobody has it (VBCRM_PUSH_UNASSIGNED) the number's owner and agents;
nobody with an inbox tab open (the page notifies them itself), and nobody twice a minute
for one conversation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import (
    AgentPresence,
    Conversation,
    Message,
    PushOutbox,
    PushSubscription,
    PushThrottle,
    message_preview,
)
from conversations.webhook_addresses import AddressRefused, url_check
from vbcrm.types import User
from whatsapp.models import SessionAgent

logger = logging.getLogger(__name__)

_TTL = 5.0
_any: list[tuple[bool, float]] = []
THROTTLE_SECONDS = 60
GONE = {404, 410}
STALE_SECONDS = 600
PREVIEW_CHARS = 120


def _any_subscription() -> bool:
    now = time.monotonic()
    if _any and _any[0][1] > now:
        return _any[0][0]
    found = PushSubscription.objects.exists()
    _any[:] = [(found, now + _TTL)]
    return found


def push_subscriptions_changed() -> None:
    _any.clear()


def push_messages_stored(messages: Sequence[Message]) -> None:
    """Customers' messages stored (inside their transaction): one outbox row each."""
    if not _any_subscription():
        return
    rows = [
        PushOutbox(message_id=m.pk, conversation_id=m.conversation_id)
        for m in messages
        if m.direction == Message.Direction.INBOUND
    ]
    if rows:
        PushOutbox.objects.bulk_create(rows)


# --- Subscriptions -------------------------------------------------------------------------


def push_subscription_save(
    *, user: User, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> PushSubscription:
    """Keep a browser's subscription (the same endpoint again updates it: a browser
    that re-subscribes, or another user logging in on it)."""
    if not (endpoint and p256dh and auth) or len(p256dh) > 200 or len(auth) > 100:
        raise ValidationError(_("This browser's subscription is incomplete."), code="invalid")
    try:
        url_check(endpoint)
    except AddressRefused as exc:
        raise ValidationError(str(exc), code="address") from None
    sub, _created = PushSubscription.objects.update_or_create(
        endpoint=endpoint[:1000],
        defaults={"user": user, "p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]},
    )
    push_subscriptions_changed()
    logger.info("push subscription saved id=%s user=%s", sub.pk, user.pk)
    return sub


def push_subscription_delete(*, user: User, endpoint: str) -> int:
    deleted, _rows = PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()
    push_subscriptions_changed()
    return deleted


# --- The worker's side -------------------------------------------------------------------


@dataclass(frozen=True)
class PushJob:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: str


def _recipients(conversation: Conversation) -> set[int]:
    if conversation.assigned_to_id is not None:
        return {conversation.assigned_to_id}
    if not settings.VBCRM_PUSH_UNASSIGNED:
        return set()
    agents = SessionAgent.objects.filter(session_id=conversation.session_id)
    return {conversation.session.owner_id, *agents.values_list("user_id", flat=True)}


def _payload(message: Message) -> str:
    conversation = message.conversation
    preview = message_preview(message.kind, message.body, message.file_name, message.location_name)
    return json.dumps(
        {
            "title": conversation.contact.display_name,
            "body": preview[:PREVIEW_CHARS],
            "url": reverse("conversations:detail", args=[conversation.pk]),
            "tag": f"conversation-{conversation.pk}",
            "conversation_id": conversation.pk,
        },
        ensure_ascii=False,
    )


def push_claim(*, limit: int = 100) -> list[PushJob]:
    """Take the waiting rows and turn them into the pushes to send now: each agent's
    browsers, for agents with no inbox tab open, not notified of that conversation in
    the last minute (the throttle moves here, so a second worker never sends it too)."""
    if not _any_subscription():
        return []  # the worker polls every second: no query while no browser subscribed
    now = timezone.now()
    jobs: list[PushJob] = []
    with transaction.atomic():
        rows = PushOutbox.objects.order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        taken = list(rows[:limit])
        if not taken:
            return []
        PushOutbox.objects.filter(pk__in=[r.pk for r in taken]).delete()
        messages = {
            m.pk: m
            for m in Message.objects.filter(pk__in=[r.message_id for r in taken]).select_related(
                "conversation__contact", "conversation__session"
            )
        }
        # The newest message of each conversation says it all: one push per conversation.
        latest: dict[int, Message] = {}
        for row in taken:
            message = messages.get(row.message_id)
            if row.created_at < now - timedelta(seconds=STALE_SECONDS):
                continue  # waited while no worker ran: old news, not a notification
            if message is not None:
                latest[message.conversation_id] = message
        for conversation_id, message in latest.items():
            users = _recipients(message.conversation)
            if not users:
                continue
            busy = set(
                AgentPresence.objects.filter(user_id__in=users, sockets__gt=0).values_list(
                    "user_id", flat=True
                )
            )
            for user_id in sorted(users - busy):
                if not _throttle_take(user_id, conversation_id, now):
                    continue
                payload = _payload(message)
                jobs.extend(
                    PushJob(s.pk, s.endpoint, s.p256dh, s.auth, payload)
                    for s in PushSubscription.objects.filter(user_id=user_id)
                )
    return jobs


def _throttle_take(user_id: int, conversation_id: int, now: datetime) -> bool:
    """Whether the agent may be notified of the conversation now (and mark it so)."""
    moved = PushThrottle.objects.filter(
        user_id=user_id,
        conversation_id=conversation_id,
        sent_at__lte=now - timedelta(seconds=THROTTLE_SECONDS),
    ).update(sent_at=now)
    if moved:
        return True
    _row, created = PushThrottle.objects.get_or_create(
        user_id=user_id, conversation_id=conversation_id, defaults={"sent_at": now}
    )
    return created


def push_results(*, results: Sequence[tuple[int, int | None]]) -> None:
    """What the push service answered each subscription (its HTTP status, or None when
    it was not reached): 404 and 410 mean the browser's subscription is gone."""
    gone = [sub_id for sub_id, status in results if status in GONE]
    sent = [sub_id for sub_id, status in results if status is not None and status < 300]
    if gone:
        PushSubscription.objects.filter(pk__in=gone).delete()
        push_subscriptions_changed()
        logger.info("push subscriptions gone ids=%s", gone)
    if sent:
        PushSubscription.objects.filter(pk__in=sent).update(last_sent_at=timezone.now())
