"""The syntax of the variables in texts that go out on their own or from a template
(``{{nome}}``, ``{{agent}}``...): their names, and the check made when a text is saved
(an unknown name or a stray brace is refused there, never at send time). Filling them in
is ``conversations.services.variables``'s job; this part is shared with the numbers'
automatic-reply settings, which ``whatsapp`` checks without importing ``conversations``.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from vbcrm.errors import field_error

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
TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
# A capital after these: "{{saudacao}}, Ana" at the start of a sentence reads "Bom dia, Ana".
SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")

GREETINGS = {
    "saudacao": ("bom dia", "boa tarde", "boa noite"),
    "greeting": ("good morning", "good afternoon", "good evening"),
}


def variables_check(text: str, field: str = "text") -> None:
    """Refuse ``text`` (a field_error on ``field``) if it uses a variable that does not
    exist, or braces that do not make one (``{{nome}``, ``{{}}``)."""
    unknown: list[str] = []
    for match in TOKEN.finditer(text or ""):
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
    rest = TOKEN.sub("", text or "")
    if "{{" in rest or "}}" in rest:
        raise field_error(
            field,
            _("Write each variable between double braces, like {{nome}}."),
            "malformed_variable",
        )


def known_variables() -> str:
    """The names to suggest (the accented spellings work too, unlisted)."""
    return ", ".join("{{" + name + "}}" for name in VARIABLES if name.isascii())
