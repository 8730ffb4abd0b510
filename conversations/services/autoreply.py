"""Automatic replies: the greeting, the away message outside business hours, keyword
rules, and the idle conversations' automatic close.

The replies to a customer's message are decided INSIDE the transaction that stores the
message (``automatic_replies``, called by the inbound services), and stored there as
pending outbox messages: a worker that dies after the commit finds them in the outbox
and sends them; one that dies before it stored neither, and the redelivered message
decides them again. Never twice, never skipped.

Rules every automatic message follows:
- it goes through the outbox like an agent's reply, ``automatic`` with its
  ``auto_reason``, sent by nobody;
- never to a group, a broadcast list or status, the number itself, or a contact marked
  "no automatic messages";
- at most ``auto_daily_cap`` a conversation a day (the number's local day), so two bots
  never answer each other forever; an agent's reply in the last
  ``agent_silence_minutes`` silences the greeting and the away message;
- at most ``auto_rate_per_minute`` a number go out a minute: the rest wait in the outbox
  (the runner paces them), they are not dropped.

A number with nothing automatic turned on costs its inbound path no query: what it has
turned on is read once per process every few seconds (``_settings_for``).
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import regex
from django.db import transaction
from django.utils import timezone

from conversations.models import Conversation, ConversationEvent, Message
from conversations.services.agent import conversation_set_status
from conversations.services.inbound import _conversations_advance
from conversations.services.routing import normalise_answer
from conversations.services.variables import variables_render
from realtime import events
from whatsapp import hours
from whatsapp.automation import compile_rule
from whatsapp.gateway.base import jid_user, new_message_id
from whatsapp.models import KeywordRule, NumberSettings, WhatsAppSession

logger = logging.getLogger(__name__)

GREETING, AWAY, KEYWORD, CLOSE = "greeting", "away", "keyword", "close"
MAX_MATCHED_TEXT = 4096  # a regular expression reads at most this much of a message
REGEX_SECONDS = 0.05  # and searches it for at most this long (then: no match)


@dataclass(frozen=True)
class _Rule:
    pk: int
    match: str
    pattern: str  # normalised, or the compiled source for a regex
    regex: regex.Pattern[str] | None
    answer: str
    file_name: str
    when: str

    def matches(self, text: str) -> bool:
        plain = normalise_answer(text[:MAX_MATCHED_TEXT])
        if self.regex is not None:
            try:
                return self.regex.search(plain, timeout=REGEX_SECONDS) is not None
            except TimeoutError:
                logger.warning("keyword rule %s: its pattern ran out of time", self.pk)
                return False
        if not plain or not self.pattern:
            return False
        if self.match == KeywordRule.Match.EXACT:
            return plain == self.pattern
        if self.match == KeywordRule.Match.STARTS:
            return plain.startswith(self.pattern)
        return self.pattern in plain


@dataclass(frozen=True)
class _Settings:
    conf: NumberSettings
    zone: ZoneInfo
    schedule: hours.Schedule | None  # None: business hours not in use
    rules: tuple[_Rule, ...]

    def open_at(self, now: datetime) -> bool:
        return self.schedule is None or hours.is_open(self.schedule, self.zone, now)


def _rule(rule: KeywordRule) -> _Rule | None:
    try:
        regex = compile_rule(rule.match, rule.pattern)
    except ValueError:
        return None  # saved before the check existed, or by hand: never matches
    return _Rule(
        pk=rule.pk,
        match=rule.match,
        pattern=normalise_answer(rule.pattern) if regex is None else rule.pattern,
        regex=regex,
        answer=rule.answer,
        file_name=(rule.file.name or "") if rule.file else "",
        when=rule.when,
    )


# What each number has turned on, per process, for a few seconds. Services that change
# a number's settings or rules forget it here; other processes see it within the TTL.
_TTL = 5.0
_cache: dict[int, tuple[_Settings | None, float]] = {}


def settings_changed(session_id: int) -> None:
    _cache.pop(session_id, None)


def _settings_for(session_id: int) -> _Settings | None:
    now = time.monotonic()
    known = _cache.get(session_id)
    if known is not None and known[1] > now:
        return known[0]
    found = _load(session_id)
    _cache[session_id] = (found, now + _TTL)
    return found


def _load(session_id: int) -> _Settings | None:
    conf = NumberSettings.objects.filter(session_id=session_id).first()
    if conf is None:
        return None
    rules = tuple(
        r
        for r in (_rule(x) for x in KeywordRule.objects.filter(session_id=session_id, active=True))
        if r is not None
    )
    if not (conf.greeting_enabled or conf.away_enabled or rules):
        return None
    return _Settings(conf=conf, zone=number_zone(conf), schedule=schedule_of(conf), rules=rules)


def number_zone(conf: NumberSettings) -> ZoneInfo:
    try:
        return hours.zone(conf.time_zone)
    except hours.ScheduleError:
        return ZoneInfo("UTC")


def schedule_of(conf: NumberSettings) -> hours.Schedule | None:
    """The number's business hours, or None when it does not use them (always open)."""
    if not conf.hours_enabled:
        return None
    try:
        return hours.parse(conf.business_hours)
    except hours.ScheduleError:
        logger.warning("business hours unreadable session=%s", conf.session_id)
        return None


def number_open_now(conf: NumberSettings, now: datetime | None = None) -> bool | None:
    """Whether the number is inside its business hours now; None when it has none."""
    schedule = schedule_of(conf)
    if schedule is None:
        return None
    return hours.is_open(schedule, number_zone(conf), now or timezone.now())


# --- Deciding, in the inbound transaction ---------------------------------------------


def _is_self(session: WhatsAppSession, conversation: Conversation) -> bool:
    contact = conversation.contact
    own = {jid_user(session.jid)} if session.jid else set()
    if session.phone_number:
        own.add(session.phone_number.lstrip("+"))
    return bool(own) and (contact.phone in own or jid_user(contact.jid) in own)


def _day_start(s: _Settings, now: datetime) -> datetime:
    local = now.astimezone(s.zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def automatic_replies(
    *, session: WhatsAppSession, messages: Sequence[Message], reopened: set[int]
) -> list[Message]:
    """Decide and store (as pending) the automatic replies to these customers' messages,
    just stored in the caller's transaction with their conversations locked and
    advanced. Returns the replies, stored; the caller announces them after its own."""
    s = _settings_for(session.pk)
    if s is None:
        return []
    latest: dict[int, list[Message]] = {}
    for message in messages:
        if message.direction == Message.Direction.INBOUND:
            latest.setdefault(message.conversation_id, []).append(message)
    replies: list[Message] = []
    now = timezone.now()
    for inbound in latest.values():
        conversation = inbound[0].conversation
        conversation.session = session  # the variables read it: no query
        contact = conversation.contact
        if contact.is_group or contact.no_auto_messages or _is_self(session, conversation):
            continue
        planned = _plan(s, conversation, inbound, reopened, now)
        if not planned:
            continue
        sent_today = Message.objects.filter(
            conversation=conversation, automatic=True, created_at__gte=_day_start(s, now)
        ).count()
        budget = max(s.conf.auto_daily_cap - sent_today, 0)
        if budget < len(planned):
            logger.info(
                "automatic replies capped conversation=%s planned=%d budget=%d",
                conversation.pk,
                len(planned),
                budget,
            )
        for reason, text, file_name, delay in planned[:budget]:
            body = variables_render(text, conversation=conversation, agent=None, zone=s.zone)
            replies.append(_reply(conversation, reason, body, file_name, now, delay))
    if replies:
        Message.objects.bulk_create(replies)
        _conversations_advance(replies, live=True)
        contacts = {pk: ms[0].conversation.contact for pk, ms in latest.items()}
        for reply in replies:  # what the events show, without a query each
            reply.conversation.contact = contacts[reply.conversation_id]
            reply.conversation.session = session
        logger.info("automatic replies queued session=%s n=%d", session.pk, len(replies))
    return replies


def _plan(
    s: _Settings,
    conversation: Conversation,
    inbound: list[Message],
    reopened: set[int],
    now: datetime,
) -> list[tuple[str, str, str, int]]:
    """(reason, text, file, delay in seconds) of each reply this conversation gets now."""
    conf = s.conf
    silenced = conversation.last_agent_reply_at is not None and (
        conversation.last_agent_reply_at > now - timedelta(minutes=conf.agent_silence_minutes)
    )
    open_now = s.open_at(now)
    planned: list[tuple[str, str, str, int]] = []
    if conf.greeting_enabled and conf.greeting_message.strip() and not silenced:
        if _greets(conf, conversation, inbound, reopened):
            delay = min(conf.greeting_delay_seconds, 60)
            planned.append((GREETING, conf.greeting_message, "", delay))
    answered = False
    for message in inbound:
        text = message.body if message.kind == Message.Kind.TEXT else ""
        if not text:
            continue
        for rule in s.rules:
            if rule.when == KeywordRule.When.INSIDE and (s.schedule is None or not open_now):
                continue
            if rule.when == KeywordRule.When.OUTSIDE and (s.schedule is None or open_now):
                continue
            if rule.matches(text):
                planned.append((KEYWORD, rule.answer, rule.file_name, 0))
                answered = True
                break
    if (
        not answered
        and conf.away_enabled
        and conf.away_message.strip()
        and s.schedule is not None
        and not open_now
        and not silenced
        and not _away_sent_since(conversation, now - timedelta(hours=conf.away_period_hours))
    ):
        planned.append((AWAY, conf.away_message, "", 0))
    return planned


def _greets(
    conf: NumberSettings, conversation: Conversation, inbound: list[Message], reopened: set[int]
) -> bool:
    if conf.greeting_on == NumberSettings.GreetingOn.NEW_CONVERSATION and (
        conversation.pk in reopened
    ):
        return True
    # First ever: nothing in the conversation before these messages (one conversation
    # per contact and number; history synced from the phone counts).
    return (
        not Message.objects.filter(conversation=conversation, pk__lt=inbound[0].pk)
        .exclude(direction=Message.Direction.NOTE)
        .exists()
    )


def _away_sent_since(conversation: Conversation, since: datetime) -> bool:
    return Message.objects.filter(
        conversation=conversation, automatic=True, auto_reason=AWAY, created_at__gte=since
    ).exists()


def _reply(
    conversation: Conversation, reason: str, text: str, file_name: str, now: datetime, delay: int
) -> Message:
    fields: dict = {"kind": Message.Kind.TEXT, "body": text.strip()}
    if file_name:
        mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        fields.update(
            kind=_kind_of(mime),
            media=file_name,
            media_status=Message.MediaStatus.READY,
            mime_type=mime,
            file_name=file_name.rsplit("/", 1)[-1],
        )
    return Message(
        conversation=conversation,
        wa_id=new_message_id(),
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.PENDING,
        automatic=True,
        auto_reason=reason,
        next_attempt_at=now + timedelta(seconds=delay) if delay else None,
        **fields,
    )


def _kind_of(mime: str) -> str:
    if mime.startswith("image/"):
        return Message.Kind.IMAGE
    if mime.startswith("video/"):
        return Message.Kind.VIDEO
    if mime.startswith("audio/"):
        return Message.Kind.AUDIO
    return Message.Kind.DOCUMENT


def automatic_replies_announce(replies: Sequence[Message]) -> None:
    """The replies' events and the worker's wake-up (after the caller's commit)."""
    if not replies:
        return
    events.messages_created(replies)
    for session_id in {r.conversation.session_id for r in replies}:
        events.worker_wakeup(session_id)


# --- Idle conversations close by themselves ---------------------------------------------


def conversations_auto_close(*, session_ids: Sequence[int], now: datetime | None = None) -> int:
    """Close the open conversations of these numbers with no message for their
    ``auto_close_hours``, each with its closing message (if the number has one and the
    contact takes automatic messages) and a system line. Returns how many closed."""
    now = now or timezone.now()
    closed = 0
    confs = NumberSettings.objects.filter(session_id__in=session_ids, auto_close_hours__gt=0)
    for conf in confs.select_related("session"):
        cutoff = now - timedelta(hours=conf.auto_close_hours)
        idle = (
            Conversation.objects.filter(session_id=conf.session_id, last_message_at__lt=cutoff)
            .exclude(status=Conversation.Status.CLOSED)
            .values_list("pk", flat=True)[:200]
        )
        for pk in list(idle):
            if _close_one(pk, conf, cutoff, now):
                closed += 1
    return closed


def _close_one(pk: int, conf: NumberSettings, cutoff: datetime, now: datetime) -> bool:
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(no_key=True, of=("self",))
            .select_related("contact", "session", "assigned_to")
            .filter(pk=pk, last_message_at__lt=cutoff)
            .exclude(status=Conversation.Status.CLOSED)
            .first()
        )
        if conversation is None:
            return False  # a message came meanwhile, or someone closed it
        text = conf.auto_close_message.strip()
        contact = conversation.contact
        if text and not (
            contact.is_group
            or contact.no_auto_messages
            or _is_self(conversation.session, conversation)
        ):
            body = variables_render(
                text, conversation=conversation, agent=None, zone=number_zone(conf)
            )
            message = _reply(conversation, CLOSE, body, "", now, 0)
            message.save()
            _conversations_advance([message], live=True)
            message.conversation.contact = contact
            message.conversation.session = conversation.session
            events.message_created(message)
            events.worker_wakeup(conversation.session_id)
        # Closed by nobody: the close's record is also the thread's system line.
        conversation_set_status(
            conversation=conversation, status=Conversation.Status.CLOSED, by=None
        )
        event = (
            ConversationEvent.objects.filter(
                conversation=conversation, kind=ConversationEvent.Kind.CLOSED
            )
            .order_by("-pk")
            .first()
        )
        if event is not None:
            events.conversation_event(event)
    logger.info("conversation closed for idleness id=%s", pk)
    return True
