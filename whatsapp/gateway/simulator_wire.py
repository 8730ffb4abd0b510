"""The simulator's wire frames as the dataclasses of :mod:`whatsapp.gateway.base`.

Pure functions of a decoded JSON frame (the protocol is described in
``whatsapp/simulator/server.py``): what :mod:`whatsapp.gateway.simulator` emits and
returns. Kept apart from the session so the connection code stays readable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from . import base


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def inbound(m: dict[str, Any], base_url: str) -> base.InboundMessage:
    """A ``msg`` frame's message (or one of a ``history`` frame's); its media, if any,
    is fetched later from the simulator's media server at ``base_url``."""
    try:
        kind = base.MessageKind(m["kind"])
    except ValueError:
        kind = base.MessageKind.OTHER
    media_ref = None
    if m.get("media_id"):
        ref = {"url": f"{base_url}/media/{m['media_id']}", "sha256": m["media_id"]}
        media_ref = _dumps(ref).encode()
    return base.InboundMessage(
        message_id=m["message_id"],
        chat=m["chat"],
        sender=m["sender"],
        timestamp=_utc(m["timestamp"]),
        kind=kind,
        text=m.get("text", ""),
        sender_alt=m.get("sender_alt", ""),
        chat_alt=m.get("chat_alt", ""),
        push_name=m.get("push_name", ""),
        from_me=m.get("from_me", False),
        is_group=m.get("is_group", False),
        mimetype=m.get("mimetype", ""),
        filename=m.get("filename", ""),
        file_size=m.get("file_size"),
        latitude=m.get("latitude"),
        longitude=m.get("longitude"),
        location_name=m.get("location_name", ""),
        quoted_id=m.get("quoted_id", ""),
        media_ref=media_ref,
    )


def receipt(frame: dict[str, Any]) -> base.Receipt:
    return base.Receipt(
        chat=frame["chat"],
        sender=frame["sender"],
        message_ids=tuple(frame["message_ids"]),
        status=frame["status"],
        timestamp=_utc(frame["timestamp"]),
    )


def group_info(answer: dict[str, Any]) -> base.GroupInfo:
    """The answer to a ``group_info`` request, without its picture (fetched apart)."""
    return base.GroupInfo(
        jid=answer["jid"],
        subject=answer.get("subject", ""),
        participants=tuple(
            base.GroupParticipant(
                jid=p["jid"],
                phone=p.get("phone", ""),
                lid=p.get("lid", ""),
                is_admin=bool(p.get("admin", False)),
                name=p.get("name", ""),
            )
            for p in answer.get("participants", [])
        ),
        picture_id=answer.get("picture_id") or "",
    )
