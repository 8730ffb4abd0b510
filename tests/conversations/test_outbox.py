"""The outbox while a number is down: replies wait, in order, then fail with the reason
once they have waited too long; Retry puts them back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import services
from conversations.models import Message

pytestmark = pytest.mark.django_db

HOURS = 24


@pytest.fixture(autouse=True)
def _expiry(settings):
    settings.VBCRM_OUTBOX_EXPIRY_HOURS = HOURS


def _reply(conversation, user, text: str, *, waited_hours: float = 0) -> Message:
    message = services.message_queue_outbound(user=user, conversation=conversation, text=text)
    Message.objects.filter(pk=message.pk).update(
        updated_at=timezone.now() - timedelta(hours=waited_hours)
    )
    return message


def _status(message: Message) -> str:
    message.refresh_from_db()
    return message.status


def test_replies_wait_in_order_while_the_number_is_down(conversation, bob):
    first = _reply(conversation, bob, "one", waited_hours=5)
    _reply(conversation, bob, "two", waited_hours=1)
    assert services.outbox_expire() == 0
    # one per conversation, the oldest first, so they go out in order when it is back
    assert [m.pk for m in services.outbox_pending(session_id=conversation.session_id)] == [first.pk]


def test_a_reply_that_waited_too_long_fails_with_the_reason(conversation, bob):
    old = _reply(conversation, bob, "old", waited_hours=HOURS + 0.1)
    fresh = _reply(conversation, bob, "fresh", waited_hours=HOURS - 0.1)
    assert services.outbox_expire() == 1
    old.refresh_from_db()
    assert old.status == Message.Status.FAILED
    assert "24 hours" in old.error
    assert _status(fresh) == Message.Status.PENDING
    assert services.outbox_expire() == 0  # nothing twice


def test_retry_gives_an_expired_reply_a_new_wait(conversation, bob):
    old = _reply(conversation, bob, "old", waited_hours=HOURS + 1)
    services.outbox_expire()
    services.message_retry(message=old)
    assert _status(old) == Message.Status.PENDING
    assert services.outbox_expire() == 0  # it waits a full period again


def test_a_reply_being_sent_is_not_expired(conversation, bob, number):
    old = _reply(conversation, bob, "old", waited_hours=HOURS + 1)
    token = uuid.uuid4()
    type(number).objects.filter(pk=number.pk).update(lease_token=token)
    assert services.outbox_claim(message_id=old.pk, lease_token=token)
    Message.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=30))
    assert services.outbox_expire() == 0
    assert _status(old) == Message.Status.PENDING


def test_the_period_comes_from_settings(conversation, bob, settings):
    settings.VBCRM_OUTBOX_EXPIRY_HOURS = 2
    old = _reply(conversation, bob, "old", waited_hours=3)
    assert services.outbox_expire() == 1
    old.refresh_from_db()
    assert "2 hours" in old.error
