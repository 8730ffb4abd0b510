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
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.models import Conversation
from vbcrm.errors import field_error
from vbcrm.types import User

# Each name a text may use (Portuguese and English spellings, with or without accents),
# and the value it stands for.
VARIABLES: dict[str, str] = {
    "nome": "name",
    "name": "name",
    "agente": "agent",
    "agent": "agent",
    "numero": "number",
    "número": "number",
    "number": "number",
    "saudacao": "saudacao",
    "saudação": "saudacao",
    "greeting": "greeting",
    "protocolo": "protocol",
    "protocol": "protocol",
}

# {{ name }}, whitespace inside the braces allowed; whatever sits between is the name.
_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
# A capital after these: "{{saudacao}}, Ana" at the start of a sentence reads "Bom dia, Ana".
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")

_GREETINGS = {
    "saudacao": ("bom dia", "boa tarde", "boa noite"),
    "greeting": ("good morning", "good afternoon", "good evening"),
}


def number_zone(session_id: int) -> ZoneInfo:
    """The time zone of a number, for its greetings and hours.

    Every number follows the server's ``TIME_ZONE`` until numbers get a zone of their own
    in their settings; this is the one place to read it from then."""
    return ZoneInfo(settings.TIME_ZONE)


def variables_check(text: str, field: str = "text") -> None:
    """Refuse ``text`` (a field_error on ``field``) if it uses a variable that does not
    exist, or braces that do not make one (``{{nome}``, ``{{}}``)."""
    unknown: list[str] = []
    for match in _TOKEN.finditer(text or ""):
        name = match.group(1)
        if name.lower() not in VARIABLES and name not in unknown:
            unknown.append(name)
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in unknown)
        raise field_error(
            field,
            ngettext(
                "Unknown variable %(names)s. Use one of: %(known)s.",
                "Unknown variables %(names)s. Use one of: %(known)s.",
                len(unknown),
            )
            % {"names": names, "known": known_variables()},
            "unknown_variable",
        )
    rest = _TOKEN.sub("", text or "")
    if "{{" in rest or "}}" in rest:
        raise field_error(
            field,
            _("Write each variable between double braces, like {{nome}}."),
            "malformed_variable",
        )


def known_variables() -> str:
    """The names to suggest (the accented spellings work too, unlisted)."""
    return ", ".join("{{" + name + "}}" for name in VARIABLES if name.isascii())


def greeting(hour: int, language: str = "saudacao") -> str:
    """Morning 05:00-11:59, afternoon 12:00-17:59, evening (and night) otherwise."""
    morning, afternoon, evening = _GREETINGS[language]
    if 5 <= hour < 12:
        return morning
    if 12 <= hour < 18:
        return afternoon
    return evening


def variables_render(
    text: str, *, conversation: Conversation, agent: User | None, now: datetime | None = None
) -> str:
    """``text`` with its variables filled for ``conversation`` (its contact, its number)
    as ``agent`` writes it; ``now``: the time of the greeting (the current time if None).
    A name ``variables_check`` would refuse is left as it is."""
    if not text or "{{" not in text:
        return text
    session = conversation.session
    local = (now or timezone.now()).astimezone(number_zone(conversation.session_id))
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
        if key in _GREETINGS and _SENTENCE_START.search(text[: match.start()]):
            value = value[:1].upper() + value[1:]
        return value

    return _TOKEN.sub(fill, text)
