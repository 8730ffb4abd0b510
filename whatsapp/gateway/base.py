"""The interface between the worker and a WhatsApp connection.

A gateway runs inside a child process, one per linked number (see
``whatsapp.gateway.process``). The child hosts one :class:`Session`; the
session reports what happens on WhatsApp through ``emit(event)`` and the
parent sends it commands. Everything here is plain, picklable data so it can
cross the pipe: no neonize type ever leaves the ``whatsapp/gateway/neonize/`` package.
"""

from __future__ import annotations

import abc
import enum
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


class ConnState(enum.StrEnum):
    STARTING = "starting"
    WAITING_QR = "waiting_qr"
    PAIRING = "pairing"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    # The QR or pairing code was not used in time; the session stopped itself.
    PAIRING_EXPIRED = "pairing_expired"
    LOGGED_OUT = "logged_out"
    STOPPED = "stopped"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    VOICE = "voice"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"


MEDIA_KINDS = frozenset(
    {
        MessageKind.IMAGE,
        MessageKind.VIDEO,
        MessageKind.AUDIO,
        MessageKind.VOICE,
        MessageKind.DOCUMENT,
        MessageKind.STICKER,
    }
)

STATUS_BROADCAST_JID = "status@broadcast"


def new_message_id() -> str:
    """A WhatsApp-style message id (same shape as the ones WhatsApp Web makes)."""
    return "3EB0" + secrets.token_hex(8).upper()


# --- Events: child -> parent -------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    state: ConnState
    detail: str = ""


@dataclass(frozen=True)
class QRCode:
    """A (rotating) QR code to show; ``code`` is the string to encode."""

    code: str


@dataclass(frozen=True)
class Paired:
    """The device is linked. ``jid`` is the device JID (``5511...:12@s.whatsapp.net``)."""

    jid: str
    phone: str
    push_name: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A message seen on WhatsApp (from a contact, or sent from the phone when ``from_me``).

    JIDs are non-AD strings (``5511999999999@s.whatsapp.net``, ``123@lid``,
    ``1203...@g.us``). ``sender_alt`` is the other address of the sender when
    WhatsApp gives both (phone JID for a LID sender, or the reverse).
    ``timestamp`` is timezone-aware UTC.
    """

    message_id: str
    chat: str
    sender: str
    timestamp: datetime
    kind: MessageKind
    text: str = ""
    sender_alt: str = ""
    chat_alt: str = ""
    push_name: str = ""
    from_me: bool = False
    is_group: bool = False
    mimetype: str = ""
    filename: str = ""
    file_size: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_name: str = ""
    quoted_id: str = ""
    # Opaque bytes the same gateway can later turn back into the media file.
    media_ref: bytes | None = None


@dataclass(frozen=True)
class Receipt:
    chat: str
    sender: str
    message_ids: tuple[str, ...]
    status: str  # "delivered" | "read" | "played"
    timestamp: datetime


@dataclass(frozen=True)
class HistoryBatch:
    messages: tuple[InboundMessage, ...]


@dataclass(frozen=True)
class Alive:
    """Periodic liveness report from the child (also proves the child is not stuck)."""

    connected: bool


@dataclass(frozen=True)
class GroupChanged:
    """WhatsApp says a group changed (subject, members, admins, picture) or the number
    joined one: its info is worth asking for again (:class:`GetGroupInfo`)."""

    jid: str


Event = (
    StateChanged | QRCode | Paired | InboundMessage | Receipt | HistoryBatch | GroupChanged | Alive
)


# --- Commands: parent -> child ------------------------------------------------


@dataclass(frozen=True)
class SendText:
    to: str
    text: str
    message_id: str
    quoted_id: str = ""
    # Who wrote the quoted message and what it said: WhatsApp shows the quote from these.
    quoted_sender: str = ""
    quoted_text: str = ""


@dataclass(frozen=True)
class SendMedia:
    to: str
    kind: MessageKind
    path: str
    message_id: str
    caption: str = ""
    filename: str = ""
    mimetype: str = ""
    quoted_id: str = ""


@dataclass(frozen=True)
class SendLocation:
    to: str
    message_id: str
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""
    quoted_id: str = ""


@dataclass(frozen=True)
class SendContact:
    """A contact card: ``vcard`` is the card's text, ``display_name`` its name."""

    to: str
    message_id: str
    display_name: str
    vcard: str
    quoted_id: str = ""


@dataclass(frozen=True)
class CheckPhones:
    """Which of ``phones`` (digits with country code) have a WhatsApp account."""

    phones: tuple[str, ...]


@dataclass(frozen=True)
class PhoneCheck:
    """One answer to :class:`CheckPhones`. ``jid`` is the address WhatsApp knows the
    account by, which may differ from the digits asked for (Brazil's ninth digit)."""

    phone: str
    on_whatsapp: bool
    jid: str = ""


@dataclass(frozen=True)
class GetGroupInfo:
    """A group's subject, members and picture. The picture, when the group has one and
    its id is not ``known_picture_id``, is written to ``picture_dest`` (files never
    cross the pipe); "" asks for no picture."""

    jid: str
    picture_dest: str = ""
    known_picture_id: str = ""


@dataclass(frozen=True)
class GroupParticipant:
    """A group member: ``jid`` is how WhatsApp addresses them in the group (a phone JID
    or a LID), ``phone`` their digits when WhatsApp tells, ``name`` when it does."""

    jid: str
    phone: str = ""
    lid: str = ""
    is_admin: bool = False
    name: str = ""


@dataclass(frozen=True)
class GroupInfo:
    """The answer to :class:`GetGroupInfo`. ``picture_id`` names the group's current
    picture ("" = none); ``picture_path`` is where it was written, "" when it was not
    (no picture, or the known one)."""

    jid: str
    subject: str
    participants: tuple[GroupParticipant, ...] = ()
    picture_id: str = ""
    picture_path: str = ""


@dataclass(frozen=True)
class DownloadMedia:
    media_ref: bytes
    dest: str  # file path the child writes to; media never crosses the pipe


@dataclass(frozen=True)
class MarkRead:
    chat: str
    sender: str
    message_ids: tuple[str, ...]


@dataclass(frozen=True)
class RequestPairCode:
    phone: str


@dataclass(frozen=True)
class Logout:
    pass


# What an outgoing message becomes: each answers a SendResult.
SendCommand = SendText | SendMedia | SendLocation | SendContact

Command = (
    SendText
    | SendMedia
    | SendLocation
    | SendContact
    | CheckPhones
    | GetGroupInfo
    | DownloadMedia
    | MarkRead
    | RequestPairCode
    | Logout
)


@dataclass(frozen=True)
class SendResult:
    message_id: str  # the id WhatsApp knows the message by
    timestamp: datetime


@dataclass(frozen=True)
class DownloadResult:
    path: str
    size: int


class GatewayError(Exception):
    """A command failed. ``transient`` errors are worth retrying later."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self):  # keep ``transient`` across the pipe
        return (_rebuild_gateway_error, (str(self), self.transient))


def _rebuild_gateway_error(message: str, transient: bool) -> GatewayError:
    return GatewayError(message, transient=transient)


# --- The session a child hosts ------------------------------------------------


@dataclass(frozen=True)
class SessionConfig:
    """What a child needs to run one number.

    ``account`` is the number's primary key as a string. ``store`` is where the
    gateway keeps its device keys (a file path, or a PostgreSQL DSN for the
    real gateway). ``device_jid`` is the linked device to resume ("" = pair a
    new one). ``options`` carries gateway-specific settings (for example the
    simulator's URL).
    """

    account: str
    store: str
    device_jid: str = ""
    media_dir: str = ""
    history_days: int = 7
    options: dict[str, str] = field(default_factory=dict)


# Returns the event's sequence number in this child (None when nobody numbers them).
Emit = Callable[[Event], "int | None"]


class Session(abc.ABC):
    """One number's WhatsApp connection, run inside its own child process.

    ``start`` returns at once; the session connects in the background, retries
    the first connect itself, and reports through ``emit``. Commands are called
    from worker threads and may run concurrently; they raise
    :class:`GatewayError` on failure.
    """

    def __init__(self, config: SessionConfig, emit: Emit) -> None:
        self.config = config
        self.emit = emit

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self, timeout: float = 10.0) -> None: ...

    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @abc.abstractmethod
    def logout(self) -> None: ...

    @abc.abstractmethod
    def request_pair_code(self, phone: str) -> str: ...

    @abc.abstractmethod
    def send_text(self, cmd: SendText) -> SendResult: ...

    @abc.abstractmethod
    def send_media(self, cmd: SendMedia) -> SendResult: ...

    def send_location(self, cmd: SendLocation) -> SendResult:
        raise GatewayError("this gateway cannot send locations")

    def send_contact(self, cmd: SendContact) -> SendResult:
        raise GatewayError("this gateway cannot send contact cards")

    def check_phones(self, cmd: CheckPhones) -> tuple[PhoneCheck, ...]:
        raise GatewayError("this gateway cannot look phone numbers up")

    def get_group_info(self, cmd: GetGroupInfo) -> GroupInfo:
        raise GatewayError("this gateway cannot read group info")

    @abc.abstractmethod
    def download_media(self, cmd: DownloadMedia) -> DownloadResult: ...

    @abc.abstractmethod
    def mark_read(self, cmd: MarkRead) -> None: ...

    def confirmed(self, seq: int) -> None:  # noqa: B027 - optional hook, no-op by default
        """The worker has stored every event emitted up to number ``seq``.

        A network that redelivers what was not acknowledged (the simulator) acks
        only now, so a worker killed before it stored a message gets it again.
        WhatsApp itself is acked by whatsmeow on receipt; there this is a no-op.
        """

    def handle(self, command: Command) -> object:
        """Run one command (the child's dispatcher calls this)."""
        match command:
            case SendText():
                return self.send_text(command)
            case SendMedia():
                return self.send_media(command)
            case SendLocation():
                return self.send_location(command)
            case SendContact():
                return self.send_contact(command)
            case CheckPhones():
                return self.check_phones(command)
            case GetGroupInfo():
                return self.get_group_info(command)
            case DownloadMedia():
                return self.download_media(command)
            case MarkRead():
                return self.mark_read(command)
            case RequestPairCode():
                return self.request_pair_code(command.phone)
            case Logout():
                return self.logout()
        raise GatewayError(f"unknown command {type(command).__name__}")


def write_file(dest: str | Path, data: bytes) -> int:
    """Write a downloaded file where the worker asked, atomically (a reader never sees
    half of it); its size. A failure is a non-transient :class:`GatewayError`."""
    path = Path(dest)
    partial = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        raise GatewayError(f"cannot write {path}: {exc}") from None
    return len(data)


def jid_user(jid: str) -> str:
    """``5511999@s.whatsapp.net`` -> ``5511999`` (drops device and agent parts)."""
    user = jid.split("@", 1)[0]
    return user.split(":", 1)[0].split(".", 1)[0]


def is_phone_jid(jid: str) -> bool:
    return jid.endswith("@s.whatsapp.net")


def is_lid(jid: str) -> bool:
    return jid.endswith("@lid")


def is_group_jid(jid: str) -> bool:
    return jid.endswith("@g.us")
