"""Builders of gateway events for tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from whatsapp.gateway.base import InboundMessage, MessageKind

_ids = itertools.count(1)


def inbound(
    *,
    phone: str = "5511988880001",
    text: str = "hello",
    kind: MessageKind = MessageKind.TEXT,
    message_id: str | None = None,
    timestamp: datetime | None = None,
    **kw,
) -> InboundMessage:
    jid = f"{phone}@s.whatsapp.net"
    fields = {
        "message_id": message_id or f"TEST{next(_ids):08d}",
        "chat": jid,
        "sender": jid,
        "timestamp": timestamp or datetime.now(UTC),
        "kind": kind,
        "text": text,
        "push_name": "Maria",
    }
    fields.update(kw)
    return InboundMessage(**fields)
