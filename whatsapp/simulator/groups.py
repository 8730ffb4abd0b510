"""The simulator's groups: a subject, members and an optional picture per group JID.

Set through the control API (``POST /api/groups``), read by devices with the
``group_info`` request. Plain data and validation only; the server delivers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class GroupError(ValueError):
    """Bad input for a group (the server answers 400 with the text)."""


@dataclass(eq=False)
class Group:
    jid: str
    subject: str = ""
    participants: list[dict[str, Any]] = field(default_factory=list)
    picture_id: str = ""  # a media id on the simulator's media server; "" = no picture

    def phones(self) -> list[str]:
        return [p["phone"] for p in self.participants if p.get("phone")]

    def answer(self) -> dict[str, Any]:
        """What a device's ``group_info`` request gets back."""
        return {
            "jid": self.jid,
            "subject": self.subject,
            "participants": [dict(p) for p in self.participants],
            "picture_id": self.picture_id,
        }


def _participant(item: Any, digits: Callable[[Any, str], str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise GroupError("each participant must be an object with 'phone' or 'lid'")
    phone = digits(item["phone"], "phone") if item.get("phone") not in (None, "") else ""
    lid = item.get("lid") or ""
    if lid and (not isinstance(lid, str) or not lid.endswith("@lid")):
        raise GroupError("a participant's 'lid' must look like '123456@lid'")
    if not phone and not lid:
        raise GroupError("each participant needs a 'phone' or a 'lid'")
    name = item.get("name") or ""
    admin = item.get("admin", False)
    if not isinstance(name, str) or not isinstance(admin, bool):
        raise GroupError("a participant's 'name' is a string and 'admin' true or false")
    out: dict[str, Any] = {"jid": lid or f"{phone}@s.whatsapp.net", "admin": admin}
    if phone:
        out["phone"] = phone
    if lid:
        out["lid"] = lid
    if name:
        out["name"] = name
    return out


def update(
    group: Group,
    body: dict[str, Any],
    *,
    digits: Callable[[Any, str], str],
    store_picture: Callable[[bytes], str],
) -> None:
    """Apply a ``POST /api/groups`` body: fields left out keep their value;
    ``"picture_base64": ""`` removes the picture."""
    if "subject" in body:
        subject = body["subject"]
        if not isinstance(subject, str) or len(subject) > 100:
            raise GroupError("'subject' must be a string of at most 100 characters")
        group.subject = subject
    if "participants" in body:
        items = body["participants"]
        if not isinstance(items, list) or len(items) > 1024:
            raise GroupError("'participants' must be a list (at most 1024)")
        group.participants = [_participant(item, digits) for item in items]
    if "picture_base64" in body:
        encoded = body["picture_base64"]
        if encoded in (None, ""):
            group.picture_id = ""
            return
        if not isinstance(encoded, str):
            raise GroupError("'picture_base64' must be a base64 string")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise GroupError("'picture_base64' is not valid base64") from None
        if not data:
            raise GroupError("'picture_base64' is empty")
        group.picture_id = store_picture(data)
