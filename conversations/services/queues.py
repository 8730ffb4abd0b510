"""What a number's owner sets up: its queues (name, colour, order, agents, sub-menu,
assignment) and its menu bot and assignment limits. Callers pass numbers and queues
the user owns (selectors.queue_manage_get, whatsapp.selectors.session_owned_list)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from conversations.models import Queue, QueueAgent, QueueSettings
from conversations.services.assignment import queue_drain
from conversations.services.routing import session_queues_changed
from vbcrm.errors import field_error, unstorable
from whatsapp.models import SessionAgent, WhatsAppSession

logger = logging.getLogger(__name__)

MAX_MENU_ATTEMPTS = 10
MAX_GREETING_LENGTH = 1000


@dataclass(frozen=True)
class QueueFields:
    name: str
    color: str = "#075e54"
    position: int = 0
    parent_id: int | None = None
    assignment: str = Queue.Assignment.OFF
    agent_ids: tuple[int, ...] = ()


def clean_queue_fields(session: WhatsAppSession, fields: QueueFields, queue: Queue | None) -> dict:
    """The queue's fields checked (``ValidationError`` by field) and tidied; no write."""
    name = " ".join((fields.name or "").split())
    if not name:
        raise field_error("name", _("Enter the queue's name."), "required")
    if len(name) > 60:
        raise field_error("name", _("The name is limited to 60 characters."), "too_long")
    if name.isdigit():
        # The customer answers the menu with a digit: a name of digits would be ambiguous.
        raise field_error("name", _("A queue's name cannot be only digits."), "invalid")
    reason = unstorable(name)
    if reason is not None:
        raise field_error("name", _(reason))
    color = (fields.color or "").strip()
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise field_error("color", _("Choose a colour such as #1e88e5."), "invalid")
    if not 0 <= fields.position <= 999:
        raise field_error("position", _("Enter an order from 0 to 999."), "invalid")
    if fields.assignment not in Queue.Assignment.values:
        raise field_error("assignment", _("Unknown assignment mode."), "invalid")
    parent = None
    if fields.parent_id:
        parent = Queue.objects.filter(pk=fields.parent_id, session=session).first()
        if parent is None or parent.parent_id is not None:
            raise field_error(
                "parent_id", _("Menus nest one level: choose a top-level queue."), "too_deep"
            )
        if queue is not None and (
            parent.pk == queue.pk or Queue.objects.filter(parent=queue).exists()
        ):
            raise field_error(
                "parent_id", _("A queue with its own sub-menu cannot go in another."), "too_deep"
            )
    members = set(SessionAgent.objects.filter(session=session).values_list("user_id", flat=True))
    members.add(session.owner_id)
    agent_ids = set(fields.agent_ids)
    if not agent_ids <= members:
        raise field_error("agent_ids", _("Only the number's agents can be in its queues."))
    return {
        "name": name,
        "color": color.lower(),
        "position": fields.position,
        "parent": parent,
        "assignment": fields.assignment,
        "agent_ids": agent_ids,
    }


def _save(queue: Queue, values: dict) -> Queue:
    agent_ids = values.pop("agent_ids")
    for key, value in values.items():
        setattr(queue, key, value)
    try:
        with transaction.atomic():
            queue.save()
            QueueAgent.objects.filter(queue=queue).exclude(user_id__in=agent_ids).delete()
            have = set(QueueAgent.objects.filter(queue=queue).values_list("user_id", flat=True))
            QueueAgent.objects.bulk_create(
                [QueueAgent(queue=queue, user_id=u) for u in sorted(agent_ids - have)]
            )
    except IntegrityError:
        raise field_error(
            "name", _("This number already has a queue with this name."), "duplicate"
        ) from None
    session_queues_changed(queue.session_id)
    queue_drain(session_id=queue.session_id)  # new agents or round-robin: waiting ones go
    return queue


def queue_create(*, session: WhatsAppSession, fields: QueueFields) -> Queue:
    queue = _save(Queue(session=session), clean_queue_fields(session, fields, None))
    logger.info("queue created id=%s session=%s", queue.pk, session.pk)
    return queue


def queue_update(*, queue: Queue, fields: QueueFields) -> Queue:
    return _save(queue, clean_queue_fields(queue.session, fields, queue))


def queue_delete(*, queue: Queue) -> None:
    """Its conversations stay, without a queue; its sub-queues go with it."""
    session_id = queue.session_id
    queue.delete()
    session_queues_changed(session_id)
    logger.info("queue deleted session=%s", session_id)


def queue_settings_get(*, session: WhatsAppSession) -> QueueSettings:
    return QueueSettings.objects.filter(session=session).first() or QueueSettings(session=session)


def queue_settings_update(
    *,
    session: WhatsAppSession,
    menu_enabled: bool,
    menu_greeting: str,
    menu_max_attempts: int,
    default_queue_id: int | None,
    menu_on_reopen: bool,
    agent_cap: int,
) -> QueueSettings:
    greeting = (menu_greeting or "").strip()
    if len(greeting) > MAX_GREETING_LENGTH:
        raise field_error(
            "menu_greeting",
            _("The greeting is limited to %(n)d characters.") % {"n": MAX_GREETING_LENGTH},
            "too_long",
        )
    reason = unstorable(greeting)
    if reason is not None:
        raise field_error("menu_greeting", _(reason))
    if not 1 <= menu_max_attempts <= MAX_MENU_ATTEMPTS:
        raise field_error(
            "menu_max_attempts",
            _("Enter a number from 1 to %(n)d.") % {"n": MAX_MENU_ATTEMPTS},
            "invalid",
        )
    if not 0 <= agent_cap <= 1000:
        raise field_error("agent_cap", _("Enter a number from 0 to 1000."), "invalid")
    default = None
    if default_queue_id:
        default = Queue.objects.filter(pk=default_queue_id, session=session).first()
        if default is None:
            raise field_error("default_queue_id", _("Choose one of this number's queues."))
    with transaction.atomic():
        conf, _created = QueueSettings.objects.select_for_update().get_or_create(session=session)
        conf.menu_enabled = menu_enabled
        conf.menu_greeting = greeting
        conf.menu_max_attempts = menu_max_attempts
        conf.default_queue = default
        conf.menu_on_reopen = menu_on_reopen
        conf.agent_cap = agent_cap
        conf.save()
    queue_drain(session_id=session.pk)  # a higher cap makes room
    return conf
