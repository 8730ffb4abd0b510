"""The little of a vCard (a shared contact's message text) that the inbox shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"^(?P<key>[A-Za-z-]+)(?:;[^:]*)?:(?P<value>.*)$")


@dataclass(frozen=True)
class Card:
    name: str = ""
    phones: list[str] = field(default_factory=list)


def parse(text: str) -> Card:
    """Name (FN) and up to five phones (TEL). Text that is no vCard is taken as the name:
    some senders share just a display name."""
    name, phones = "", []
    if "BEGIN:VCARD" not in (text or "").upper():
        return Card(name=(text or "").strip())
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        key, value = match["key"].upper(), match["value"].strip()
        if key == "FN" and not name:
            name = value
        elif key == "TEL" and value:
            phones.append(value)
    return Card(name=name, phones=phones[:5])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", " ")


def build(name: str, phone: str) -> str:
    """A vCard 3.0 for a name and a phone (digits with country code). ``waid`` is how
    WhatsApp knows the phone has an account: its "Message" button opens the chat."""
    return "\n".join(
        (
            "BEGIN:VCARD",
            "VERSION:3.0",
            f"FN:{_escape(name)}",
            f"TEL;type=CELL;waid={phone}:+{phone}",
            "END:VCARD",
        )
    )
