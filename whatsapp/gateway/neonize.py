"""The real WhatsApp gateway: one neonize (whatsmeow) client per child process.

This is the only module in the project that imports neonize, and it is only
imported inside a spawned child process (see docs/ARCHITECTURE.md, docs/NEONIZE.md):
neonize's Go core can abort the whole process, leaks a handle per failed
connect, and must never be imported in a process that may fork.

Layout:

* pure mapping functions (``map_message``, ``map_receipt``, ``map_history``)
  that turn neonize protobuf events into the plain dataclasses of
  :mod:`whatsapp.gateway.base`;
* :class:`NeonizeSession`, the :class:`base.Session` the child hosts. It
  follows docs/NEONIZE.md section 6: one ``NewClient`` for the session's life, a
  connect loop with backoff on its own thread, Go callbacks that only enqueue,
  a dispatcher thread that maps and emits, and a process-wide reader/writer
  lock around every FFI call.

Things neonize 0.5.2 cannot do, and what this module does instead:

* Replies: neonize builds a quote only from the full original message event,
  so a text reply's quote is built here from what the command carries (id,
  sender and text of the quoted message); media replies go without the quote.
* Message ids: ``send_message`` cannot take a caller-chosen id, so the id
  WhatsApp knows the message by is the one in :class:`base.SendResult`, not
  ``cmd.message_id``.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import queue
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from whatsapp.gateway import base

# neonize calls ``logging.basicConfig(level=INFO)`` at import time, which would
# install an INFO stream handler on the root logger of whatever process imports
# it (the child, or pytest). basicConfig is a no-op when the root logger already
# has a handler, so a NullHandler is parked there for the duration of the import.
_root_logger = logging.getLogger()
_import_guard = logging.NullHandler() if not _root_logger.handlers else None
if _import_guard is not None:
    _root_logger.addHandler(_import_guard)
try:
    from neonize.client import NewClient  # noqa: E402
    from neonize.events import (  # noqa: E402
        ClientOutdatedEv,
        ConnectedEv,
        ConnectFailureEv,
        DisconnectedEv,
        HistorySyncEv,
        LoggedOutEv,
        MessageEv,
        PairStatusEv,
        ReceiptEv,
        StreamReplacedEv,
        TemporaryBanEv,
    )
    from neonize.exc import NeonizeError  # noqa: E402
    from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason  # noqa: E402
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (  # noqa: E402
        ContextInfo,
        ExtendedTextMessage,
        Message,
    )
    from neonize.utils.enum import ReceiptType  # noqa: E402
    from neonize.utils.jid import Jid2String  # noqa: E402
finally:
    if _import_guard is not None:
        _root_logger.removeHandler(_import_guard)

# neonize logs pair codes and per-event chatter at INFO. The Go core reads the
# level of ``neonize.utils.log`` itself (not the effective level) when it
# connects, so that logger is set explicitly: WARN keeps whatsmeow quiet too.
for _name in ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

PHONE_SERVER = "s.whatsapp.net"

# Timestamps above this are milliseconds: as seconds it would be year 5138, as
# milliseconds it is 1973. docs/NEONIZE.md measured ms for messages, s for receipts.
_MS_THRESHOLD = 100_000_000_000


# --- Pure mapping -------------------------------------------------------------


def to_datetime(value: int) -> datetime:
    """A WhatsApp timestamp (seconds or milliseconds) as an aware UTC datetime.

    A missing timestamp (0) becomes "now" rather than 1970, so the message still
    sorts where it arrived.
    """
    if value <= 0:
        return datetime.now(UTC)
    if value >= _MS_THRESHOLD:
        return datetime.fromtimestamp(value // 1000, UTC) + timedelta(milliseconds=value % 1000)
    return datetime.fromtimestamp(value, UTC)


def jid_to_str(jid: JID | None) -> str:
    """A neonize JID as a non-AD string (``user@server``, no device or agent); "" if empty."""
    if jid is None or jid.IsEmpty or (not jid.User and not jid.Server):
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def strip_device(jid: str) -> str:
    """``5511.0:12@s.whatsapp.net`` -> ``5511@s.whatsapp.net`` (string form of JIDToNonAD)."""
    if "@" not in jid:
        return jid
    user, server = jid.rsplit("@", 1)
    return f"{base.jid_user(user)}@{server}" if user else server


def parse_jid(value: str, *, keep_device: bool = False) -> JID:
    """A JID string (``user[.agent][:device]@server``, or a bare phone number) as a neonize JID.

    Raises ValueError on a malformed value.
    """
    value = value.strip()
    if not value:
        raise ValueError("empty JID")
    if "@" in value:
        user, server = value.rsplit("@", 1)
    else:
        user, server = value.lstrip("+"), PHONE_SERVER
    device = agent = 0
    if ":" in user:
        user, device_part = user.split(":", 1)
        device = int(device_part)
    if "." in user:
        user, agent_part = user.split(".", 1)
        agent = int(agent_part)
    if not server:
        raise ValueError(f"JID without server: {value!r}")
    if not keep_device:
        device = agent = 0
    return JID(User=user, Server=server, Device=device, RawAgent=agent, Integrator=0, IsEmpty=False)


EMPTY_JID = JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)

# Envelopes whatsmeow may leave in place (history sync never unwraps anything):
# each holds the real message in ``.message``.
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "deviceSentMessage",
    "groupMentionedMessage",
    "lottieStickerMessage",
    "botInvokeMessage",
)

# Fields that never carry user content on their own: keys, receipts-of-sorts,
# reactions, edits/revokes (protocolMessage), poll votes, pins. A message made
# only of these maps to None (nothing to show in the inbox). Edits and revokes
# are not modelled by base.InboundMessage, so they are dropped too.
_SILENT_FIELDS = frozenset(
    {
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "messageContextInfo",
        "protocolMessage",
        "reactionMessage",
        "encReactionMessage",
        "pollUpdateMessage",
        "keepInChatMessage",
        "pinInChatMessage",
        "editedMessage",
        "encEventResponseMessage",
        "encCommentMessage",
        "stickerSyncRmrMessage",
        "call",
        "callLogMesssage",
        "placeholderMessage",
        "messageHistoryNotice",
        "groupRootKeyShare",
        "rootSecretDistributeMessage",
    }
)

_POLL_FIELDS = (
    "pollCreationMessage",
    "pollCreationMessageV2",
    "pollCreationMessageV3",
    "pollCreationMessageV5",
    "pollCreationMessageV6",
)

# Media kinds: (field on waE2E.Message, field the media_ref uses). A PTV (round
# video note) is stored as a videoMessage because whatsmeow's DownloadAny only
# looks at image/video/audio/document/sticker fields.
_MEDIA_FIELDS = {
    "imageMessage": ("imageMessage", base.MessageKind.IMAGE),
    "videoMessage": ("videoMessage", base.MessageKind.VIDEO),
    "ptvMessage": ("videoMessage", base.MessageKind.VIDEO),
    "audioMessage": ("audioMessage", None),  # AUDIO or VOICE, by .PTT
    "documentMessage": ("documentMessage", base.MessageKind.DOCUMENT),
    "stickerMessage": ("stickerMessage", base.MessageKind.STICKER),
}


def unwrap(message: Message) -> Message:
    """The innermost content of ephemeral / view-once / device-sent / ... envelopes."""
    for _ in range(8):  # envelopes nest at most a few levels; never loop forever
        for name in _WRAPPERS:
            if message.HasField(name) and getattr(message, name).HasField("message"):
                message = getattr(message, name).message
                break
        else:
            return message
    return message


@dataclass(frozen=True)
class _Content:
    """What a waE2E.Message says, independent of who sent it where."""

    kind: base.MessageKind
    text: str = ""
    mimetype: str = ""
    filename: str = ""
    file_size: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_name: str = ""
    quoted_id: str = ""
    media_ref: bytes | None = None


def _quoted_id(part: Any) -> str:
    try:
        if part.HasField("contextInfo"):
            return part.contextInfo.stanzaID
    except ValueError:  # this message type has no contextInfo
        pass
    return ""


def _media_ref(ref_field: str, part: Any) -> bytes:
    # Only the media part is kept, without contextInfo: the quoted message in
    # there can be large and download_any does not need it.
    ref = Message()
    getattr(ref, ref_field).CopyFrom(part)
    getattr(ref, ref_field).ClearField("contextInfo")
    return ref.SerializeToString(deterministic=True)


def map_content(message: Message) -> _Content | None:
    """Map the content of a waE2E.Message; None when it carries nothing to show."""
    message = unwrap(message)
    if message.HasField("conversation"):
        return _Content(kind=base.MessageKind.TEXT, text=message.conversation)
    if message.HasField("extendedTextMessage"):
        part = message.extendedTextMessage
        return _Content(kind=base.MessageKind.TEXT, text=part.text, quoted_id=_quoted_id(part))

    for name, (ref_field, kind) in _MEDIA_FIELDS.items():
        if not message.HasField(name):
            continue
        part = getattr(message, name)
        if name == "audioMessage":
            kind = base.MessageKind.VOICE if part.PTT else base.MessageKind.AUDIO
        filename = ""
        if name == "documentMessage":
            filename = part.fileName or part.title
        return _Content(
            kind=kind,
            text=getattr(part, "caption", ""),  # audio and stickers have none
            mimetype=part.mimetype,
            filename=filename,
            file_size=part.fileLength if part.HasField("fileLength") else None,
            quoted_id=_quoted_id(part),
            media_ref=_media_ref(ref_field, part),
        )

    if message.HasField("locationMessage"):
        part = message.locationMessage
        return _Content(
            kind=base.MessageKind.LOCATION,
            text=part.comment or part.address,
            latitude=part.degreesLatitude,
            longitude=part.degreesLongitude,
            location_name=part.name,
            quoted_id=_quoted_id(part),
        )
    if message.HasField("liveLocationMessage"):
        part = message.liveLocationMessage
        return _Content(
            kind=base.MessageKind.LOCATION,
            text=part.caption,
            latitude=part.degreesLatitude,
            longitude=part.degreesLongitude,
            quoted_id=_quoted_id(part),
        )
    if message.HasField("contactMessage"):
        part = message.contactMessage
        return _Content(
            kind=base.MessageKind.CONTACT,
            text=_contact_text(part),
            quoted_id=_quoted_id(part),
        )
    if message.HasField("contactsArrayMessage"):
        part = message.contactsArrayMessage
        return _Content(
            kind=base.MessageKind.CONTACT,
            text="\n\n".join(_contact_text(c) for c in part.contacts) or part.displayName,
            quoted_id=_quoted_id(part),
        )
    for name in _POLL_FIELDS:
        if message.HasField(name):
            part = getattr(message, name)
            return _Content(kind=base.MessageKind.OTHER, text=part.name, quoted_id=_quoted_id(part))

    present = [field.name for field, _ in message.ListFields()]
    if not present or all(name in _SILENT_FIELDS for name in present):
        return None
    # Something with user content we do not model (buttons, products, events,
    # group invites...): still an inbox entry, so agents know it arrived.
    first = getattr(message, next(n for n in present if n not in _SILENT_FIELDS))
    text = ""
    for attr in ("caption", "text", "name", "contentText"):
        with contextlib.suppress(AttributeError, ValueError):
            value = getattr(first, attr)
            if isinstance(value, str) and value:
                text = value
                break
    return _Content(kind=base.MessageKind.OTHER, text=text, quoted_id=_quoted_id(first))


def _contact_text(part: Any) -> str:
    return "\n".join(v for v in (part.displayName, part.vcard) if v)


def map_message(ev: MessageEv) -> base.InboundMessage | None:
    """Map a neonize MessageEv; None for messages with no user content.

    None is returned for: events without a decrypted message, and messages
    made only of protocol/bookkeeping parts (reactions, edits, revokes,
    sender-key distribution, poll votes, pins; see ``_SILENT_FIELDS``).
    """
    if not ev.HasField("Message"):
        return None
    content = map_content(ev.Message)
    if content is None:
        return None
    info = ev.Info
    source = info.MessageSource
    chat = jid_to_str(source.Chat)
    sender = jid_to_str(source.Sender)
    sender_alt = jid_to_str(source.SenderAlt)
    chat_alt = ""
    if not source.IsGroup:
        if source.IsFromMe:
            # In a DM we sent, RecipientAlt is the other address of the chat.
            chat_alt = jid_to_str(source.RecipientAlt)
        elif sender == chat:
            chat_alt = sender_alt
    if chat_alt == chat:
        chat_alt = ""
    return _inbound(
        content,
        message_id=info.ID,
        chat=chat,
        sender=sender,
        timestamp=to_datetime(info.Timestamp),
        sender_alt=sender_alt if sender_alt != sender else "",
        chat_alt=chat_alt,
        push_name=info.Pushname,
        from_me=source.IsFromMe,
        is_group=source.IsGroup,
    )


def _inbound(content: _Content, **envelope: Any) -> base.InboundMessage:
    """An InboundMessage from what the message says and where it came from."""
    said = {f.name: getattr(content, f.name) for f in dataclasses.fields(content)}
    return base.InboundMessage(**said, **envelope)


_RECEIPT_STATUS = {
    ReceiptEv.ReceiptType.DELIVERED: "delivered",
    ReceiptEv.ReceiptType.READ: "read",
    ReceiptEv.ReceiptType.PLAYED: "played",
}


def map_receipt(ev: ReceiptEv) -> base.Receipt | None:
    """Map a delivered/read/played receipt; None for the rest.

    Ignored: sender (our own send acknowledged), retry, server-error, inactive,
    peer, history-sync, and the ``*-self`` kinds (our own phone read an
    incoming message: not a status of an outgoing message).
    """
    status = _RECEIPT_STATUS.get(ev.Type)
    if status is None or not ev.MessageIDs:
        return None
    return base.Receipt(
        chat=jid_to_str(ev.MessageSource.Chat),
        sender=jid_to_str(ev.MessageSource.Sender),
        message_ids=tuple(ev.MessageIDs),
        status=status,
        timestamp=to_datetime(ev.Timestamp),
    )


def map_history(
    ev: HistorySyncEv,
    *,
    history_days: int,
    own_jid: str = "",
    now: datetime | None = None,
) -> base.HistoryBatch | None:
    """Map a history sync blob to the messages newer than ``history_days``.

    Messages that cannot be mapped (system stubs, protocol parts) are skipped,
    as are status updates (``statusV3Messages``). ``own_jid`` fills ``sender``
    for messages we sent (history does not say who "me" is). None when nothing
    is left.
    """
    if history_days <= 0:
        return None
    cutoff = (now or datetime.now(UTC)) - timedelta(days=history_days)
    out: list[base.InboundMessage] = []
    for conv in ev.Data.conversations:
        chat = strip_device(conv.ID)
        if not chat:
            continue
        is_group = base.is_group_jid(chat)
        chat_alt = ""
        if not is_group:
            alt = conv.pnJID if base.is_lid(chat) else conv.lidJID
            chat_alt = strip_device(alt) if alt and strip_device(alt) != chat else ""
        for item in conv.messages:
            if not item.HasField("message"):
                continue
            web = item.message
            timestamp = to_datetime(web.messageTimestamp)
            if timestamp < cutoff or not web.HasField("message"):
                continue
            content = map_content(web.message)
            if content is None:
                continue
            from_me = web.key.fromMe
            if from_me:
                sender = own_jid
            elif is_group:
                sender = strip_device(web.key.participant or web.participant)
            else:
                sender = chat
            out.append(
                _inbound(
                    content,
                    message_id=web.key.ID,
                    chat=chat,
                    sender=sender,
                    timestamp=timestamp,
                    sender_alt=chat_alt if (not is_group and not from_me) else "",
                    chat_alt=chat_alt,
                    push_name=web.pushName,
                    from_me=from_me,
                    is_group=is_group,
                )
            )
    if not out:
        return None
    out.sort(key=lambda m: m.timestamp)
    return base.HistoryBatch(messages=tuple(out))


def _enum_name(enum: Any, value: int) -> str:
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


# --- Device store -------------------------------------------------------------


class StoreUnavailable(Exception):
    """The device store could not be read (worth retrying)."""


# libpq's URI parameters. lib/pq (the Go driver) passes any other parameter as a
# server run-time setting (``search_path=wa``); libpq rejects those, so they are
# turned into ``options=-c name=value`` for psycopg.
_LIBPQ_PARAMS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    }
)


def pg_conninfo(dsn: str) -> str:
    """A lib/pq URL (as whatsmeow gets it) as a libpq URL psycopg accepts."""
    parts = urlsplit(dsn)
    kept: list[tuple[str, str]] = []
    settings: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _LIBPQ_PARAMS:
            kept.append((key, value))
        else:
            escaped = value.replace("\\", "\\\\").replace(" ", "\\ ")
            settings.append(f"-c {key}={escaped}")
    if settings:
        options = [v for k, v in kept if k == "options"]
        kept = [(k, v) for k, v in kept if k != "options"]
        kept.append(("options", " ".join(options + settings)))
    return urlunsplit(parts._replace(query=urlencode(kept)))


def device_in_store(store: str, device_jid: str) -> bool:
    """Whether whatsmeow's ``whatsmeow_device`` table holds ``device_jid``.

    Checked with plain SQL because handing whatsmeow a JID it cannot find makes
    the Go core dereference nil and abort the process. A missing file or table
    means "not there"; a store that cannot be reached raises StoreUnavailable.
    """
    if store.startswith("postgres"):
        return _device_in_postgres(store, device_jid)
    path = Path(store)
    if not path.exists():
        return False
    try:
        # Read-only, so the check never creates or migrates anything.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise StoreUnavailable(str(exc)) from exc
    try:
        row = conn.execute("SELECT 1 FROM whatsmeow_device WHERE jid = ?", (device_jid,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise StoreUnavailable(str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(str(exc)) from exc
    finally:
        conn.close()
    return row is not None


def _device_in_postgres(store: str, device_jid: str) -> bool:
    import psycopg  # only the PostgreSQL store needs it

    try:
        with psycopg.connect(pg_conninfo(store), connect_timeout=10, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM whatsmeow_device WHERE jid = %s", (device_jid,)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return False
    except psycopg.Error as exc:
        raise StoreUnavailable(str(exc)) from exc
    return row is not None


# --- Concurrency helpers --------------------------------------------------------


class RWLock:
    """Many readers or one writer. Waiting writers block new readers, so stop()
    and the start of a connect are not starved by a stream of sends."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(self._try_read, timeout)

    def _try_read(self) -> bool:
        if self._writer or self._writers_waiting:
            return False
        self._readers += 1
        return True

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_write(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._writers_waiting += 1
            try:
                ok = self._cond.wait_for(lambda: not self._writer and not self._readers, timeout)
                if ok:
                    self._writer = True
                return ok
            finally:
                self._writers_waiting -= 1
                self._cond.notify_all()

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


# One per process: neonize keeps its clients in unlocked Go maps, so a connect
# racing any other call can abort the process ("concurrent map writes").
FFI_LOCK = RWLock()


class _Once:
    """Calls ``fn`` the first time it is called, from whichever thread."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._fn()


# --- Errors -------------------------------------------------------------------

# whatsmeow reports HTTP/IQ failures as "... status code 404", "... status 404:
# item-not-found" or "server returned error 479".
_STATUS_RE = re.compile(r"\b(?:status code|status|error)\s+(\d{3})\b")
_PERMANENT_HINTS = (
    "not-authorized",
    "forbidden",
    "invalid",
    "unsupported",
    "didn't find any",
    "bad request",
)
_TRANSIENT_HINTS = (
    "client is nil",
    "not connected",
    "timeout",
    "timed out",
    "deadline",
    "context canceled",
    "websocket",
    "connection",
    "dial",
    "eof",
    "i/o",
    "no such host",
    "network",
    "unreachable",
    "broken pipe",
    "reset by peer",
    "rate-overlimit",
    "temporar",
    "try again",
)


def is_transient(text: str, *, default: bool = False) -> bool:
    """Whether a neonize error message looks like a network/server hiccup.

    A status code decides when there is one (5xx, 408 and 429 retry; other 4xx
    do not); then wording; then ``default``.
    """
    lowered = text.lower()
    match = _STATUS_RE.search(lowered)
    if match:
        code = int(match.group(1))
        if code >= 500 or code in (408, 429):
            return True
        if 400 <= code < 500:
            return False
    if any(hint in lowered for hint in _PERMANENT_HINTS):
        return False
    if any(hint in lowered for hint in _TRANSIENT_HINTS):
        return True
    return default


def _gateway_error(what: str, exc: BaseException, *, default: bool = False) -> base.GatewayError:
    text = str(exc) or type(exc).__name__
    return base.GatewayError(f"{what}: {text}", transient=is_transient(text, default=default))


# --- The session ----------------------------------------------------------------

_STOP = object()  # dispatcher sentinel


def _opt_float(options: dict[str, str], key: str, default: float) -> float:
    try:
        return float(options.get(key, default))
    except (TypeError, ValueError):
        logger.warning("ignoring bad gateway option %s", key)
        return default


class NeonizeSession(base.Session):
    """One number on the real WhatsApp network, through neonize's sync client.

    Options (``config.options``, all seconds, mostly for tests):
    ``retry_initial`` (2), ``retry_max`` (300): first-connect backoff;
    ``connect_window`` (10): how long the start of a connect holds the FFI
    lock exclusively; ``command_wait`` (30): how long a command waits for it.
    """

    def __init__(self, config: base.SessionConfig, emit: base.Emit) -> None:
        super().__init__(config, emit)
        options = config.options
        self._retry_initial = max(0.01, _opt_float(options, "retry_initial", 2.0))
        self._retry_max = max(self._retry_initial, _opt_float(options, "retry_max", 300.0))
        self._connect_window = _opt_float(options, "connect_window", 10.0)
        self._command_wait = _opt_float(options, "command_wait", 30.0)

        self._client: NewClient | None = None
        self._device_jid = config.device_jid
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop_evt = threading.Event()  # wakes the backoff wait at once
        self._stopped_evt = threading.Event()
        self._stop_guard = threading.Lock()
        self._stop_started = False
        self._connect_done = threading.Event()
        self._connect_done.set()
        self._connect_thread: threading.Thread | None = None
        self._dispatch_thread: threading.Thread | None = None
        self._window: _Once | None = None

        # Written by Go-callback and connect threads, read by command threads;
        # plain bools are atomic enough, the FFI lock orders the calls.
        self._in_connect = False  # client.connect() is running (Go knows the client)
        self._connected = False  # ConnectedEv seen and no DisconnectedEv since
        self._qr_seen = False  # a QR arrived during this connect (pair code allowed)
        self._had_connection = False  # this connect reached CONNECTED (resets backoff)
        self._terminal = False  # LOGGED_OUT / PAIRING_EXPIRED emitted: drop later states
        self._closed = False  # STOPPED emitted: emit nothing more
        self.retry_waits: list[float] = []  # backoff waits taken, for observability

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        if self._dispatch_thread is not None:
            return
        self._start_dispatcher()
        self._enqueue_state(base.ConnState.STARTING)
        self._connect_thread = threading.Thread(
            target=self._connect_loop, name=f"neonize-connect-{self.config.account}", daemon=True
        )
        self._connect_thread.start()

    def _start_dispatcher(self) -> None:
        self._dispatch_thread = threading.Thread(
            target=self._dispatch_loop, name=f"neonize-dispatch-{self.config.account}", daemon=True
        )
        self._dispatch_thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._stop_guard:
            first = not self._stop_started
            self._stop_started = True
        if not first:
            self._stopped_evt.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        self._stop_evt.set()
        logger.info("neonize session %s stopping", self.config.account)

        client = self._client
        if client is not None and FFI_LOCK.acquire_write(timeout=_remaining(deadline)):
            # Exclusive: no send/download may be inside Go while the client is
            # torn down, and a connect that is starting has finished its setup.
            # Go's Stop can block for a whole dial timeout (60 s measured), so
            # it runs on a helper that keeps the lock until Go is done, and
            # stop() itself honours its timeout.
            stopper = threading.Thread(
                target=self._stop_go,
                args=(client,),
                name=f"neonize-stop-go-{self.config.account}",
                daemon=True,
            )
            stopper.start()
            stopper.join(_remaining(deadline))
            if stopper.is_alive():
                logger.warning("neonize client still stopping (account %s)", self.config.account)
        elif client is not None:
            logger.warning("neonize stop: FFI lock busy (account %s)", self.config.account)

        current = threading.current_thread()
        if self._connect_thread is not None and self._connect_thread is not current:
            self._connect_thread.join(_remaining(deadline))
        if self._dispatch_thread is not None:
            self._queue.put(_STOP)
            if self._dispatch_thread is not current:
                self._dispatch_thread.join(_remaining(deadline))
                if self._dispatch_thread.is_alive():
                    logger.warning("neonize dispatcher still busy at stop")
        self._closed = True
        try:
            self.emit(base.StateChanged(base.ConnState.STOPPED))
        except Exception:
            logger.exception("neonize emit failed (StateChanged)")
        self._stopped_evt.set()
        logger.info("neonize session %s stopped", self.config.account)

    def _stop_go(self, client: NewClient) -> None:
        """Stop the Go client; runs holding the exclusive FFI lock, releases it."""
        try:
            if self._in_connect:
                client.stop()
                if not self._connect_done.wait(60):
                    logger.warning(
                        "neonize connect did not return after stop (account %s)",
                        self.config.account,
                    )
        except Exception:
            logger.exception("neonize stop failed (account %s)", self.config.account)
        finally:
            FFI_LOCK.release_write()

    def is_connected(self) -> bool:
        client = self._client
        if client is None or not (self._in_connect and self._connected):
            return False
        # Never wait here: during a connect's exclusive window the answer is
        # "not yet" anyway.
        if not FFI_LOCK.acquire_read(timeout=0):
            return False
        try:
            return bool(self._in_connect and client.is_connected)
        except Exception:
            return False
        finally:
            FFI_LOCK.release_read()

    def logout(self) -> None:
        with self._ffi("logout") as client:
            try:
                client.logout()
            except NeonizeError as exc:
                raise _gateway_error("logout", exc) from exc
        logger.info("neonize session %s logged out", self.config.account)
        self._finish(base.ConnState.LOGGED_OUT, "logged out")
        self.stop()

    # -- commands --------------------------------------------------------------

    def request_pair_code(self, phone: str) -> str:
        digits = "".join(ch for ch in phone if ch.isdigit())
        if not digits:
            raise base.GatewayError("pair code: no phone number given")
        with self._ffi("pair code", need_login=False) as client:
            if not self._qr_seen:
                # whatsmeow only accepts PairPhone once the first QR arrived.
                raise base.GatewayError("pair code: not ready (no QR yet)", transient=True)
            try:
                code = client.PairPhone(digits, show_push_notification=True)
            except NeonizeError as exc:
                raise _gateway_error("pair code", exc) from exc
        self._enqueue_state(base.ConnState.PAIRING)
        return code

    def send_text(self, cmd: base.SendText) -> base.SendResult:
        to = self._command_jid("send", cmd.to)
        # Built by hand rather than passing a str to send_message: that would
        # scan the text for @mentions and query group info over the network.
        message = Message(conversation=cmd.text)
        if cmd.quoted_id:
            quote = ContextInfo(
                stanzaID=cmd.quoted_id, quotedMessage=Message(conversation=cmd.quoted_text)
            )
            if cmd.quoted_sender:
                quote.participant = cmd.quoted_sender
            message = Message(
                extendedTextMessage=ExtendedTextMessage(text=cmd.text, contextInfo=quote)
            )
        with self._ffi("send") as client:
            try:
                resp = client.send_message(to, message)
            except NeonizeError as exc:
                raise _gateway_error("send", exc) from exc
        logger.info("neonize sent text %s (account %s)", resp.ID, self.config.account)
        return base.SendResult(message_id=resp.ID, timestamp=to_datetime(resp.Timestamp))

    def send_media(self, cmd: base.SendMedia) -> base.SendResult:
        if cmd.kind not in base.MEDIA_KINDS:
            raise base.GatewayError(f"send: {cmd.kind} is not a media kind")
        to = self._command_jid("send", cmd.to)
        try:
            # Always bytes: neonize's builders treat a str as a path *or a URL*.
            data = Path(cmd.path).read_bytes()
        except OSError as exc:
            raise base.GatewayError(f"send: cannot read media file: {exc}") from exc
        with self._ffi("send") as client:
            try:
                message = self._build_media(client, cmd, data)
                resp = client.send_message(to, message)
            except NeonizeError as exc:
                raise _gateway_error("send", exc) from exc
            except Exception as exc:  # PIL / ffmpeg / magic failures on bad input
                raise base.GatewayError(f"send: cannot prepare media: {exc}") from exc
        logger.info("neonize sent %s %s (account %s)", cmd.kind, resp.ID, self.config.account)
        return base.SendResult(message_id=resp.ID, timestamp=to_datetime(resp.Timestamp))

    @staticmethod
    def _build_media(client: NewClient, cmd: base.SendMedia, data: bytes) -> Message:
        caption = cmd.caption or None
        kind = cmd.kind
        if kind == base.MessageKind.IMAGE:
            return client.build_image_message(data, caption=caption)
        if kind == base.MessageKind.VIDEO:
            return client.build_video_message(data, caption=caption)
        if kind in (base.MessageKind.AUDIO, base.MessageKind.VOICE):
            ptt = kind == base.MessageKind.VOICE
            message = client.build_audio_message(data, ptt=ptt)
            # WhatsApp only plays a voice note whose mimetype names the codec;
            # libmagic just says "audio/ogg".
            if ptt and message.audioMessage.mimetype == "audio/ogg":
                message.audioMessage.mimetype = "audio/ogg; codecs=opus"
            return message
        if kind == base.MessageKind.DOCUMENT:
            filename = cmd.filename or os.path.basename(cmd.path)
            return client.build_document_message(
                data,
                caption=caption,
                title=filename,
                filename=filename,
                mimetype=cmd.mimetype or None,
            )
        return client.build_sticker_message(data)

    def download_media(self, cmd: base.DownloadMedia) -> base.DownloadResult:
        try:
            message = Message.FromString(cmd.media_ref)
        except Exception as exc:
            raise base.GatewayError(f"download: bad media_ref: {exc}") from exc
        with self._ffi("download") as client:
            try:
                data = client.download_any(message)
            except NeonizeError as exc:
                # Media servers hiccup more often than media vanish: retry
                # unless the error says gone/invalid.
                raise _gateway_error("download", exc, default=True) from exc
        dest = Path(cmd.dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)  # readers never see a half-written file
        return base.DownloadResult(path=str(dest), size=len(data))

    def mark_read(self, cmd: base.MarkRead) -> None:
        if not cmd.message_ids:
            return
        chat = self._command_jid("mark read", cmd.chat)
        sender = self._command_jid("mark read", cmd.sender) if cmd.sender else chat
        with self._ffi("mark read") as client:
            try:
                client.mark_read(
                    *cmd.message_ids, chat=chat, sender=sender, receipt=ReceiptType.READ
                )
            except NeonizeError as exc:
                raise _gateway_error("mark read", exc) from exc

    @staticmethod
    def _command_jid(what: str, value: str) -> JID:
        try:
            return parse_jid(value)
        except ValueError as exc:
            raise base.GatewayError(f"{what}: bad JID: {exc}") from exc

    @contextlib.contextmanager
    def _ffi(self, what: str, *, need_login: bool = True) -> Iterator[NewClient]:
        """Shared FFI lock around a command, refusing when Go has no live client.

        Calling into a client that is not running makes Go raise "client is
        nil" at best and abort the process at worst (get_me), so it is checked
        here, before and after waiting for the lock.
        """
        self._check_ready(what, need_login)
        if not FFI_LOCK.acquire_read(timeout=self._command_wait):
            raise base.GatewayError(f"{what}: gateway busy", transient=True)
        try:
            client = self._check_ready(what, need_login)
            yield client
        finally:
            FFI_LOCK.release_read()

    def _check_ready(self, what: str, need_login: bool) -> NewClient:
        client = self._client
        if self._stop_evt.is_set() or client is None or not self._in_connect:
            raise base.GatewayError(f"{what}: not connected", transient=True)
        if need_login and not self._connected:
            raise base.GatewayError(f"{what}: not connected", transient=True)
        return client

    # -- connect loop ------------------------------------------------------------

    def _connect_loop(self) -> None:
        delay = self._retry_initial
        while not self._stop_evt.is_set():
            if self._client is None:
                error = self._prepare_client()
                if self._client is None and error is None:
                    return  # the device is gone: _finish() reported it
            if self._client is not None:
                self._had_connection = False
                error = self._connect_once()
                if self._had_connection:
                    delay = self._retry_initial  # a live connection dropped: start over
            if self._stop_evt.is_set():
                return
            self._enqueue_state(base.ConnState.DISCONNECTED, error or "connection closed")
            wait = min(self._retry_max, delay * (1 + random.uniform(0, 0.25)))
            self.retry_waits.append(wait)
            logger.info(
                "neonize session %s: connect failed, retrying in %.1fs",
                self.config.account,
                wait,
            )
            if self._stop_evt.wait(wait):
                return
            delay = min(self._retry_max, delay * 2)

    def _prepare_client(self) -> str | None:
        """Create the one client; returns an error text worth retrying.

        Leaves ``self._client`` None and returns None when the stored device is
        gone (the session then finishes as LOGGED_OUT).
        """
        store = self.config.store
        jid: JID | None = None
        if self._device_jid:
            try:
                jid = parse_jid(self._device_jid, keep_device=True)
            except ValueError:
                self._finish(base.ConnState.LOGGED_OUT, "invalid device JID")
                return None
            try:
                found = device_in_store(store, self._device_jid)
            except StoreUnavailable as exc:
                return f"device store unavailable: {exc}"
            if not found:
                logger.warning("neonize session %s: device not in store", self.config.account)
                self._finish(base.ConnState.LOGGED_OUT, "device not found in store")
                return None
        elif not store.startswith("postgres"):
            # Go's SQLite driver does not create missing directories.
            Path(store).parent.mkdir(parents=True, exist_ok=True)
        self._client = self._build_client(jid)
        return None

    def _build_client(self, jid: JID | None) -> NewClient:
        client = NewClient(
            self.config.store,
            jid=jid,
            uuid=f"vbcrm-{self.config.account}",
            new_device=jid is None,
        )
        client.event.qr(self._on_qr)
        # neonize's own handler only prints the status pointer; the QR
        # "timeout" status is the one signal that pairing expired.
        client._NewClient__onLoginStatus = self._on_login_status  # type: ignore[attr-defined]
        # Every subscription must exist before connect() (it sends the list).
        client.event(PairStatusEv)(self._on_pair_status)
        client.event(ConnectedEv)(self._on_connected)
        client.event(DisconnectedEv)(self._on_disconnected)
        client.event(LoggedOutEv)(self._on_logged_out)
        client.event(StreamReplacedEv)(self._on_stream_replaced)
        client.event(ConnectFailureEv)(self._on_connect_failure)
        client.event(TemporaryBanEv)(self._on_temporary_ban)
        client.event(ClientOutdatedEv)(self._on_client_outdated)
        client.event(MessageEv)(self._on_message)
        client.event(ReceiptEv)(self._on_receipt)
        client.event(HistorySyncEv)(self._on_history)
        return client

    def _connect_once(self) -> str | None:
        """One blocking client.connect(); the error text, or None if it returned."""
        client = self._client
        assert client is not None
        while not FFI_LOCK.acquire_write(timeout=0.5):
            if self._stop_evt.is_set():
                return None
        window = _Once(FFI_LOCK.release_write)
        if self._stop_evt.is_set():  # stop() may have run while we waited
            window()
            return None
        # The exclusive lock is held from here until Go calls back, connect()
        # returns, or connect_window passes: Go registers the client in its
        # unlocked maps during this time.
        self._window = window
        self._qr_seen = False
        self._connected = False
        self._in_connect = True
        self._connect_done.clear()
        timer = threading.Timer(self._connect_window, window)
        timer.daemon = True
        timer.start()
        try:
            client.connect()
            return None
        except NeonizeError as exc:
            return str(exc) or type(exc).__name__
        except Exception as exc:  # ctypes/encoding trouble: log it, keep retrying
            logger.exception("neonize connect crashed (account %s)", self.config.account)
            return f"{type(exc).__name__}: {exc}"
        finally:
            self._in_connect = False
            self._connected = False
            self._connect_done.set()
            timer.cancel()
            window()

    # -- Go callbacks: run on the Go thread, so they only record and enqueue ------

    def _release_window(self) -> None:
        window = self._window
        if window is not None:
            window()

    def _on_qr(self, _client: NewClient, code: bytes) -> None:
        self._release_window()
        first = not self._qr_seen
        self._qr_seen = True
        self._queue.put(("qr", first, code.decode("utf-8", "replace")))

    def _on_login_status(self, _uuid: int | None, status: int | None) -> None:
        self._release_window()
        text = ctypes.string_at(status).decode("utf-8", "replace") if status else ""
        self._queue.put(("login_status", text))

    def _on_pair_status(self, client: NewClient, ev: PairStatusEv) -> None:
        self._release_window()
        if ev.Status == PairStatusEv.PStatus.SUCCESS:
            # Done here, not in the dispatcher: if connect() returns before the
            # dispatcher runs, the next connect must resume this device, not
            # pair yet another one.
            client.jid = JID(
                User=ev.ID.User,
                Server=ev.ID.Server,
                Device=ev.ID.Device,
                RawAgent=ev.ID.RawAgent,
                Integrator=0,
                IsEmpty=False,
            )
            client.new_device = False
        self._queue.put(("pair_status", ev))

    def _on_connected(self, _client: NewClient, _ev: ConnectedEv) -> None:
        self._release_window()
        self._connected = True
        self._had_connection = True
        self._queue.put(("state", base.ConnState.CONNECTED, ""))

    def _on_disconnected(self, _client: NewClient, _ev: DisconnectedEv) -> None:
        self._release_window()
        self._connected = False
        self._queue.put(("state", base.ConnState.DISCONNECTED, "connection lost"))

    def _on_logged_out(self, _client: NewClient, ev: LoggedOutEv) -> None:
        self._release_window()
        self._connected = False
        reason = _enum_name(ConnectFailureReason, ev.Reason)
        self._queue.put(("finish", base.ConnState.LOGGED_OUT, f"logged out ({reason})"))

    def _on_stream_replaced(self, _client: NewClient, _ev: StreamReplacedEv) -> None:
        self._release_window()
        self._connected = False
        self._queue.put(("finish", base.ConnState.LOGGED_OUT, "stream replaced"))

    def _on_connect_failure(self, _client: NewClient, ev: ConnectFailureEv) -> None:
        self._release_window()
        reason = _enum_name(ConnectFailureReason, ev.Reason)
        detail = f"connect failure: {reason} {ev.Message}".strip()
        self._queue.put(("state", base.ConnState.DISCONNECTED, detail))

    def _on_temporary_ban(self, _client: NewClient, ev: TemporaryBanEv) -> None:
        self._release_window()
        reason = _enum_name(TemporaryBanEv.TempBanReason, ev.Code)
        detail = f"temporary ban: {reason}, expires in {ev.Expire}"
        self._queue.put(("state", base.ConnState.DISCONNECTED, detail))

    def _on_client_outdated(self, _client: NewClient, _ev: ClientOutdatedEv) -> None:
        self._release_window()
        self._queue.put(("state", base.ConnState.DISCONNECTED, "client outdated"))

    def _on_message(self, _client: NewClient, ev: MessageEv) -> None:
        self._release_window()
        self._queue.put(("message", ev))

    def _on_receipt(self, _client: NewClient, ev: ReceiptEv) -> None:
        self._release_window()
        self._queue.put(("receipt", ev))

    def _on_history(self, _client: NewClient, ev: HistorySyncEv) -> None:
        self._release_window()
        self._queue.put(("history", ev))

    # -- dispatcher: maps and emits, so a slow emit never stalls Go --------------

    def _enqueue_state(self, state: base.ConnState, detail: str = "") -> None:
        self._queue.put(("state", state, detail))

    def _finish(self, state: base.ConnState, detail: str) -> None:
        """Report a terminal state, then stop the session (from any thread)."""
        self._queue.put(("finish", state, detail))

    def _dispatch_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._dispatch(item)
            except Exception:
                # One bad event must not kill the dispatcher (and with it the
                # session); the payload is not logged, it may hold a message body.
                logger.exception("neonize dispatch failed for %s event", item[0])

    def _dispatch(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "message":
            msg = map_message(item[1])
            if msg is not None:
                self._safe_emit(msg)
        elif kind == "receipt":
            receipt = map_receipt(item[1])
            if receipt is not None:
                self._safe_emit(receipt)
        elif kind == "history":
            batch = map_history(
                item[1],
                history_days=self.config.history_days,
                own_jid=strip_device(self._device_jid),
            )
            if batch is not None:
                self._safe_emit(batch)
        elif kind == "state":
            if not self._terminal:
                self._safe_emit(base.StateChanged(item[1], item[2]))
        elif kind == "qr":
            _, first, code = item
            if self._terminal:
                return
            if first:
                self._safe_emit(base.StateChanged(base.ConnState.WAITING_QR))
            self._safe_emit(base.QRCode(code))
        elif kind == "login_status":
            self._on_login_status_text(item[1])
        elif kind == "pair_status":
            self._on_pair_status_ev(item[1])
        elif kind == "finish":
            if self._terminal:
                return
            self._terminal = True
            self._safe_emit(base.StateChanged(item[1], item[2]))
            # stop() joins this thread, so it must run on another one.
            threading.Thread(
                target=self.stop, name=f"neonize-stop-{self.config.account}", daemon=True
            ).start()

    def _on_login_status_text(self, status: str) -> None:
        lowered = status.strip().lower()
        if lowered == "timeout":
            logger.info("neonize session %s: QR pairing expired", self.config.account)
            self._dispatch(("finish", base.ConnState.PAIRING_EXPIRED, "QR code expired"))
        elif lowered.startswith("err"):
            self._dispatch(("state", base.ConnState.DISCONNECTED, f"pairing: {status}"))
        else:
            logger.debug("neonize login status %s", status)

    def _on_pair_status_ev(self, ev: PairStatusEv) -> None:
        if ev.Status != PairStatusEv.PStatus.SUCCESS:
            detail = f"pairing failed: {ev.Error}" if ev.Error else "pairing failed"
            self._dispatch(("state", base.ConnState.DISCONNECTED, detail))
            return
        # The AD form (with the device) is what whatsmeow keys its store by.
        jid = Jid2String(ev.ID)
        self._device_jid = jid
        logger.info("neonize session %s paired", self.config.account)
        phone = ev.ID.User if ev.ID.Server == PHONE_SERVER else ""
        self._safe_emit(base.Paired(jid=jid, phone=phone, push_name=ev.BusinessName))

    def _safe_emit(self, event: base.Event) -> None:
        if self._closed:  # nothing may follow STOPPED
            return
        try:
            self.emit(event)
        except Exception:
            logger.exception("neonize emit failed (%s)", type(event).__name__)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
