"""Helpers shared by the neonize gateway tests.

Real neonize protobuf events, built the way Go would send them, and the session
config, ``emit`` recorder and fake connected client the NeonizeSession tests use.
"""

from __future__ import annotations

import ctypes
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from neonize._binder import func_callback_bytes
from neonize.events import MessageEv, ReceiptEv
from neonize.proto.Neonize_pb2 import (
    JID,
    GroupInfo,
    IsOnWhatsAppResponse,
    MessageInfo,
    MessageSource,
    ProfilePictureInfo,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    Message,
    StickerMessage,
)
from neonize.utils.enum import ReceiptType

from whatsapp.gateway import base
from whatsapp.gateway.neonize import NeonizeSession

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


def call_event(client: Any, ev: Any, code: int) -> None:
    """What Go does: call the ctypes callback with a pointer to the serialised event."""
    data = ev.SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data))
    func_callback_bytes(client.event.execute)(client.uuid, ctypes.addressof(buf), len(data), code)


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


class FakeClient:
    """Stands in for a connected NewClient, to check what the session hands neonize."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.send_error: Exception | None = None
        self.download_error: Exception | None = None
        self.send_gate: threading.Event | None = None
        self.stop_gate: threading.Event | None = None
        self.is_connected = True
        self.group: GroupInfo | None = None  # what get_group_info answers
        self.group_error: Exception | None = None
        self.picture: ProfilePictureInfo | None = None  # what get_profile_picture answers
        self.picture_error: Exception | None = None

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def send_message(self, to: JID, message: Message) -> SimpleNamespace:
        self._record("send_message", to, message)
        if self.send_gate is not None:
            self.send_gate.wait(5)
        if self.send_error:
            raise self.send_error
        return SimpleNamespace(ID="3EB0SERVER", Timestamp=TS_S)

    def build_image_message(self, data: bytes, caption: str | None = None) -> Message:
        self._record("build_image_message", data, caption=caption)
        return Message(imageMessage=ImageMessage(caption=caption))

    def build_audio_message(self, data: bytes, ptt: bool = False) -> Message:
        self._record("build_audio_message", data, ptt=ptt)
        return Message(audioMessage=AudioMessage(mimetype="audio/ogg", PTT=ptt))

    def build_document_message(self, data: bytes, **kwargs: Any) -> Message:
        self._record("build_document_message", data, **kwargs)
        return Message(documentMessage=DocumentMessage(fileName=kwargs["filename"]))

    def build_sticker_message(self, data: bytes) -> Message:
        self._record("build_sticker_message", data)
        return Message(stickerMessage=StickerMessage(mimetype="image/webp"))

    def is_on_whatsapp(self, *numbers: str) -> list:
        self._record("is_on_whatsapp", *numbers)
        if self.send_error:
            raise self.send_error
        # WhatsApp answers the phone it knows, maybe without Brazil's ninth digit.
        known = {"+5511988880001": "551188880001"}
        return [
            IsOnWhatsAppResponse(
                Query=n,
                IsIn=n in known,
                JID=JID(
                    User=known.get(n, ""),
                    Server="s.whatsapp.net" if n in known else "",
                    Device=0,
                    RawAgent=0,
                    Integrator=0,
                    IsEmpty=n not in known,
                ),
            )
            for n in numbers
        ]

    def download_any(self, message: Message) -> bytes:
        self._record("download_any", message)
        if self.download_error:
            raise self.download_error
        return b"media-bytes"

    def mark_read(self, *ids: str, chat: JID, sender: JID, receipt: ReceiptType) -> None:
        self._record("mark_read", *ids, chat=chat, sender=sender, receipt=receipt)

    def PairPhone(self, phone: str, show_push_notification: bool) -> str:  # noqa: N802
        self._record("PairPhone", phone)
        return "ABCD-EFGH"

    def get_group_info(self, jid: JID) -> GroupInfo:
        self._record("get_group_info", jid)
        if self.group_error:
            raise self.group_error
        assert self.group is not None
        return self.group

    def get_profile_picture(self, jid: JID, extra: Any) -> ProfilePictureInfo:
        self._record("get_profile_picture", jid, extra)
        if self.picture_error:
            raise self.picture_error
        return self.picture or ProfilePictureInfo()

    def stop(self) -> None:
        self._record("stop")
        if self.stop_gate is not None:
            self.stop_gate.wait(5)


def live_session(tmp_path: Path) -> Iterator[tuple[NeonizeSession, FakeClient, Recorder]]:
    """A session whose client is a connected :class:`FakeClient` (a fixture's body)."""
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    fake = FakeClient()
    session._client = fake  # type: ignore[assignment]
    session._in_connect = True
    session._connected = True
    yield session, fake, recorder
    session.stop(timeout=5)
