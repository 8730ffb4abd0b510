"""Variables in texts that go out on their own or from a template: ``{{nome}}``, ``{{agent}}``...

Checked when the text is saved (``variables_check``: an unknown name or a stray brace is
refused there, never at send time) and filled when it is used (``variables_render``).
Values are plain text: message bodies are text, escaped where a page shows them.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from conversations.models import Conversation
from vbcrm.types import User
from vbcrm.variables import (
    GREETINGS,
    SENTENCE_START,
    TOKEN,
    VARIABLES,
    known_variables,
    variables_check,
)
from whatsapp.models import NumberSettings

__all__ = ["VARIABLES", "known_variables", "number_zone", "variables_check", "variables_render"]


def number_zone(session_id: int) -> ZoneInfo:
    """The time zone of a number (its settings'), for its greetings and hours; the
    server's ``TIME_ZONE`` when it has none or an unknown one."""
    name = (
        NumberSettings.objects.filter(session_id=session_id)
        .values_list("time_zone", flat=True)
        .first()
    )
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ValueError, KeyError):
        return ZoneInfo(settings.TIME_ZONE)


def greeting(hour: int, language: str = "saudacao") -> str:
    """Morning 05:00-11:59, afternoon 12:00-17:59, evening (and night) otherwise."""
    morning, afternoon, evening = GREETINGS[language]
    if 5 <= hour < 12:
        return morning
    if 12 <= hour < 18:
        return afternoon
    return evening


def variables_render(
    text: str,
    *,
    conversation: Conversation,
    agent: User | None,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> str:
    """``text`` with its variables filled for ``conversation`` (its contact, its number)
    as ``agent`` writes it; ``now``: the time of the greeting (the current time if None),
    in ``zone`` (the number's, read when not given). A name ``variables_check`` would
    refuse is left as it is."""
    if not text or "{{" not in text:
        return text
    session = conversation.session
    zone = zone or number_zone(conversation.session_id)
    local = (now or timezone.now()).astimezone(zone)
    values = {
        "name": conversation.contact.display_name,
        "agent": (agent.get_full_name().strip() or agent.get_username()) if agent else "",
        "number": session.phone_number or session.name,
        "saudacao": greeting(local.hour, "saudacao"),
        "greeting": greeting(local.hour, "greeting"),
        "protocol": str(conversation.pk),
    }

    def fill(match: re.Match[str]) -> str:
        key = VARIABLES.get(match.group(1).lower())
        if key is None:
            return match.group(0)
        value = values[key]
        if key in GREETINGS and SENTENCE_START.search(text[: match.start()]):
            value = value[:1].upper() + value[1:]
        return value

    return TOKEN.sub(fill, text)
