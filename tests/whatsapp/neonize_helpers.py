"""Helpers shared by the neonize gateway tests.

Real neonize protobuf events, built the way Go would send them, and the session
config and ``emit`` recorder the NeonizeSession tests use.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neonize.events import MessageEv, ReceiptEv
from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from whatsapp.gateway import base

PHONE = "5511999990001"
TS_MS = 1767225600000  # 2026-01-01T00:00:00Z
TS_S = 1767225600
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> JID:
    return JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


EMPTY = JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)


def source(
    *,
    chat: JID | None = None,
    sender: JID | None = None,
    sender_alt: JID = EMPTY,
    recipient_alt: JID = EMPTY,
    from_me: bool = False,
    is_group: bool = False,
) -> MessageSource:
    chat = chat or jid(PHONE)
    return MessageSource(
        Chat=chat,
        Sender=sender or jid(chat.User, chat.Server, device=3),
        IsFromMe=from_me,
        IsGroup=is_group,
        SenderAlt=sender_alt,
        RecipientAlt=recipient_alt,
        BroadcastListOwner=EMPTY,
    )


def message_event(
    message: Message,
    *,
    msg_id: str = "3EB0AAA111",
    timestamp: int = TS_MS,
    push_name: str = "Alice",
    **source_kwargs: Any,
) -> MessageEv:
    ev = MessageEv(
        Info=MessageInfo(
            MessageSource=source(**source_kwargs),
            ID=msg_id,
            ServerID=0,
            Type="text",
            Pushname=push_name,
            Timestamp=timestamp,
            Category="",
            Multicast=False,
            MediaType="",
            Edit="",
        ),
        Message=message,
        IsEphemeral=False,
        IsViewOnce=False,
        IsViewOnceV2=False,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=False,
        UnavailableRequestID="",
        RetryCount=0,
    )
    # proto2: serialising proves every required field is set, as Go's would be.
    return MessageEv.FromString(ev.SerializeToString())


def receipt_event(kind: int, ids: tuple[str, ...] = ("3EB0AAA111",)) -> ReceiptEv:
    ev = ReceiptEv(
        MessageSource=source(sender=jid(PHONE, device=2)),
        MessageIDs=list(ids),
        Timestamp=TS_S,
        Type=kind,
    )
    return ReceiptEv.FromString(ev.SerializeToString())


def config(tmp_path: Path, **options: str) -> base.SessionConfig:
    return base.SessionConfig(
        account=f"t{uuid.uuid4().hex[:10]}",
        store=str(tmp_path / "wa" / "store.sqlite3"),
        options=dict(options),
    )


class Recorder:
    """An ``emit`` that records (time, thread name, event); optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.items: list[tuple[float, str, base.Event]] = []
        self._cond = threading.Condition()

    def __call__(self, event: base.Event) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._cond:
            self.items.append((time.monotonic(), threading.current_thread().name, event))
            self._cond.notify_all()

    @property
    def events(self) -> list[base.Event]:
        with self._cond:
            return [event for _, _, event in self.items]

    def states(self) -> list[base.ConnState]:
        return [e.state for e in self.events if isinstance(e, base.StateChanged)]

    def wait_for(
        self, pred: Callable[[base.Event], bool], count: int = 1, timeout: float = 5.0
    ) -> list[tuple[float, str, base.Event]]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([i for i in self.items if pred(i[2])]) >= count, timeout
            )
            found = [i for i in self.items if pred(i[2])]
        assert ok, f"wanted {count} matching events, got {[i[2] for i in self.items]}"
        return found


def is_state(state: base.ConnState) -> Callable[[base.Event], bool]:
    return lambda e: isinstance(e, base.StateChanged) and e.state == state
