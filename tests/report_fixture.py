"""The reports' hand-computed fixture (see tests/conversations/test_reports.py for its
figures), built through the services with the clock set: for the unit tests and, through
``manage.py shell``, for the browser test's live server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from unittest import mock
from zoneinfo import ZoneInfo

from conversations import services
from conversations.models import Conversation
from conversations.services.routing import bot_message_queue
from tests.factories import inbound
from whatsapp import services as whatsapp_services

SP = ZoneInfo("America/Sao_Paulo")
D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
RANGE = {"range": "custom", "from": "2026-03-02", "to": "2026-03-03"}
PHONES = ("5511977700001", "5511977700002", "5511977700003", "5511977700009")


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SP).astimezone(UTC)


def _now(when: datetime):
    return mock.patch("django.utils.timezone.now", return_value=when)


def _write(session, phone: str, when: datetime) -> Conversation:
    with _now(when):
        message = services.message_receive(
            session=session, msg=inbound(phone=phone, timestamp=when, text="oi")
        )
    return message.conversation


def _reply(user, conversation: Conversation, when: datetime) -> None:
    with _now(when):
        services.message_queue_outbound(
            user=user, conversation=Conversation.objects.get(pk=conversation.pk), text="olá"
        )


def _status(conversation: Conversation, status: str, by, when: datetime) -> None:
    with _now(when):
        services.conversation_set_status(
            conversation=Conversation.objects.get(pk=conversation.pk), status=status, by=by
        )


def _assign(conversation: Conversation, user, when: datetime) -> None:
    with _now(when):
        services.conversation_assign(
            conversation=Conversation.objects.get(pk=conversation.pk), assignee=user, by=user
        )


def build(number, alice, bob, charlie=None) -> dict:
    """Conversations A (reopened twice), B (never answered) and C on ``number``, and,
    with ``charlie``, a number of his with one conversation."""
    a = _write(number, PHONES[0], at(D1, 12))
    _assign(a, bob, at(D1, 12, 5))
    _reply(bob, a, at(D1, 12, 10))
    _status(a, "closed", alice, at(D1, 13))
    _write(number, PHONES[0], at(D1, 14))
    _reply(bob, a, at(D1, 14, 30))
    _status(a, "closed", bob, at(D1, 15))
    _write(number, PHONES[0], at(D2, 9))
    _reply(alice, a, at(D2, 9, 5))
    _assign(a, alice, at(D2, 9, 10))
    _status(a, "closed", alice, at(D2, 11))

    b = _write(number, PHONES[1], at(D1, 22, 30))
    with _now(at(D1, 22, 31)):
        bot_message_queue(conversation=Conversation.objects.get(pk=b.pk), text="Um momento")

    c = _write(number, PHONES[2], at(D2, 23, 50))
    with _now(at(D3, 0, 10)):
        services.message_receive(
            session=number, msg=inbound(phone=PHONES[2], from_me=True, timestamp=at(D3, 0, 10))
        )
    made = {"a": a, "b": b, "c": c}
    if charlie is not None:
        other = whatsapp_services.session_create(owner=charlie, name="Other")
        x = _write(other, PHONES[3], at(D1, 12))
        _reply(charlie, x, at(D1, 12, 1))
        _status(x, "closed", charlie, at(D1, 12, 2))
        made["other"] = other
    return made
