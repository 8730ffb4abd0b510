# ruff: noqa: E501  (the API tables below are meant to be pasted into a README as is)
"""A fake WhatsApp network on loopback, for tests, demos and benchmarks.

One asyncio process holds everything in memory: the linked numbers, the QR
codes being shown, the messages contacts send, what the numbers sent back.
Gateway clients (``whatsapp.gateway.simulator.SimulatorSession``) connect to
``/ws/device`` the way WhatsApp Web connects to WhatsApp; people and tests
drive "the phones" and "the contacts" through the JSON control API below. It
imports nothing from Django, so it runs standalone (``python -m
whatsapp.simulator`` or ``manage.py whatsapp_simulator``) and inside tests
(:class:`SimulatorServer`, :func:`run_in_thread`).

Control API (JSON in and out; errors are ``{"error": "..."}`` with 400 for bad
input, 404 for an unknown resource, 409 for a code that is not pending):

| Endpoint | Body / query | Answer |
|---|---|---|
| `GET /api/health` | | `{"ok": true}` |
| `GET /api/qr` | | pending QR codes: `[{"account", "code", "issued_at"}]` |
| `POST /api/qr/scan` | `{"account"` or `"code", "phone", "push_name"?}` | links the device (it gets Paired, then CONNECTED): `{"account", "phone", "jid"}`; 409 if no such pending code. A phone keeps up to four linked devices, as WhatsApp does; a fifth logs the oldest out |
| `GET /api/pair-codes` | | pending pairing codes: `[{"account", "code", "phone", "issued_at"}]` |
| `POST /api/pair-codes/confirm` | `{"code"}` | links the device with the phone it asked for: `{"account", "phone", "jid"}`; 409 if not pending |
| `GET /api/numbers` | | linked devices, oldest first (a phone has a row per device): `[{"account", "phone", "jid", "push_name", "connected", "queued"}]` |
| `POST /api/messages` | one message object, or a list of them (see below) | `{"message_id", "queued"}` (a list gives `{"message_ids": [...]}`); every device of the phone gets it, a disconnected one on reconnect, in order (`queued`: one is disconnected) |
| `GET /api/sent?phone=` | | what the number sent, in order: `[{"message_id", "to", "kind", "text", "filename", "mimetype", "size", "sha256", "quoted_id", "timestamp"}]`; a `location` adds `"latitude", "longitude", "location_name", "address"`, a `contact` adds `"display_name"` (its vCard is the `text`) |
| `GET /api/sent/{message_id}/media` | | the raw bytes of a sent media (its mimetype as Content-Type) |
| `POST /api/receipts` | `{"phone", "message_ids": [...], "status": "delivered"\\|"read"\\|"played", "from"?}` | the phone's devices get a Receipt: `{"ok": true}` |
| `GET /api/reads?phone=` | | read receipts the number sent (mark_read): `[{"chat", "sender", "message_ids", "timestamp"}]` |
| `POST /api/drop` | `{"phone"}` or `{"all": true}` | closes the phone's device sockets (or all); clients must reconnect by themselves: `{"dropped": n}` |
| `POST /api/logout` | `{"phone", "account"?}` | logged out from the phone: its devices (only that account's, with `account`) get LOGGED_OUT, their links are forgotten: `{"ok": true}` |
| `POST /api/replay` | `{"phone", "message_id"}` | delivers an already delivered inbound message again to the phone's devices, same id and content: `{"message_id"}` |
| `POST /api/unregistered` | `{"phones": [...], "registered"?: false}` | those phones have no WhatsApp account (every other phone has one) when numbers look them up; `"registered": true` gives them one again: `{"unregistered": [...]}` |
| `GET /api/lookups?phone=` | | the phones the number looked up, in order: `[{"phones", "timestamp"}]` |
| `POST /api/history` | `{"phone", "messages": [message objects, each may carry "from_me"]}` | each of the phone's devices gets one HistoryBatch: `{"count": n}` |
| `POST /api/groups` | `{"jid": "1203...@g.us", "subject"?, "participants"?: [{"phone"` or `"lid", "admin"?, "name"?}], "picture_base64"?}` | makes or changes a group (fields left out keep their value; `"picture_base64": ""` removes the picture); the devices of every participant's phone get a group change event, and devices asking for the group's info get it: `{"jid", "notified": n}` |

A message object (``POST /api/messages``, ``/api/history``):

| Field | Meaning |
|---|---|
| `to` | the linked phone that receives it (not needed inside `/api/history`) |
| `from` | the contact's phone digits; with `lid`, the sender's phone alternative |
| `lid` | the contact's LID (`"123456@lid"`) when WhatsApp addresses them by LID |
| `push_name` | the contact's profile name |
| `kind` | `text` (default), `image`, `video`, `audio`, `voice`, `document`, `sticker`, `location`, `contact` |
| `text` | the body, or the caption of a media |
| `media_base64` | the media bytes; if omitted a small real file of the kind is generated |
| `mimetype`, `filename` | default by kind (documents always get a filename) |
| `latitude`, `longitude`, `location_name` | for `location` (the two numbers are required) |
| `vcard`, `display_name` | for `contact` (one of the two is required; the vCard is the message text) |
| `group` | `{"jid": "1203...@g.us"}`: a group message, sent by the contact in that group |
| `message_id` | optional, generated otherwise |
| `timestamp` | optional, ISO 8601 or epoch seconds; now by default |
| `quoted_id` | optional id of the message it replies to |
| `from_me` | the message was sent from the phone itself (the chat is `from`/`lid`/`group`) |

Device protocol (``GET /ws/device``, one JSON object per text frame, in order):

* client → server first: ``{"t": "hello", "v": 1, "account", "device_jid", "epoch", "last_seq"}``.
  An empty ``device_jid`` starts a pairing: ``qr`` frames every ``qr_interval``
  seconds, then ``paired`` + ``connected`` on a scan, or ``pairing_expired``
  and a close after ``qr_rotations`` codes. A known or unknown device JID is
  resumed (``connected``), unless it was logged out (``logged_out`` + close).
* server → client data: ``msg`` / ``receipt`` / ``history`` / ``group`` (``{"jid"}``: that
  group changed) frames carry a
  ``seq`` that grows across the whole server (``epoch`` names the server run).
  They stay in the number's outbox until the client acknowledges them with
  ``{"t": "ack", "seq"}`` and are sent again on the next connection otherwise,
  so a drop never loses one; the client skips a ``seq`` it has already seen.
* client requests: ``{"t": "req", "id", "op": "send" | "read" | "check" | "group_info" | "pair_code" | "logout", ...}``
  (``check``: ``{"phones": [digits]}`` answered by ``{"results": [{"phone", "on_whatsapp", "jid"}]}``;
  ``group_info``: ``{"jid"}`` answered by ``{"jid", "subject", "participants": [{"jid", "phone"?,
  "lid"?, "admin", "name"?}], "picture_id"}``, the picture fetched from ``GET /media/{picture_id}``),
  answered by ``{"t": "res", "id", ...}`` or ``{"t": "res", "id", "error"}``.
  Media is uploaded first with ``POST /media/upload`` (raw bytes, the
  mimetype as Content-Type, answer ``{"media_id", "sha256", "size"}``) and
  inbound media are fetched from ``GET /media/{media_id}``, like WhatsApp's
  media servers.
* ``replaced``: another connection took this account or number over.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import mimetypes
import secrets
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from . import groups, samples

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
KINDS = frozenset(
    {"text", "image", "video", "audio", "voice", "document", "sticker", "location", "contact"}
)
MEDIA_KINDS = frozenset({"image", "video", "audio", "voice", "document", "sticker"})
RECEIPT_STATUSES = frozenset({"delivered", "read", "played"})
# History batches and media uploads can be large; loopback does not care.
MAX_BODY = 256 * 1024 * 1024
MAX_FRAME = 64 * 1024 * 1024
# Inbound messages remembered per number for /api/replay; bounded so a long
# benchmark does not grow without limit.
REPLAY_MEMORY = 100_000
# WhatsApp's pairing-code alphabet: no 0/O, 1/I or U to confuse.
PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
HELLO_TIMEOUT = 10.0
CLOSE_DROPPED = 4000  # application close code for /api/drop
MAX_COMPANIONS = 4  # devices one phone keeps linked, as WhatsApp does


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> float:
    return time.time()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _new_message_id() -> str:
    # The shape a phone gives its own messages (20 upper-case hex characters).
    return "3A" + secrets.token_hex(9).upper()


def _jid_user(jid: str) -> str:
    return jid.split("@", 1)[0].split(":", 1)[0].split(".", 1)[0]


def _device_number(jid: str) -> int:
    user = jid.split("@", 1)[0]
    _, _, device = user.partition(":")
    return int(device) if device.isdigit() else 0


def _phone_jid(phone: str) -> str:
    return f"{phone}@s.whatsapp.net"


# --- State ---------------------------------------------------------------------


@dataclass(eq=False)
class _Media:
    data: bytes
    mimetype: str


@dataclass(eq=False)
class _Device:
    """One device WebSocket. Frames go through ``queue`` so they keep their order
    and handlers never wait on the network (one writer task per socket)."""

    ws: web.WebSocketResponse
    account: str = ""
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    link: _Link | None = None
    pairing: _Pairing | None = None
    closing: bool = False
    aborted: bool = False
    close_code: int = WSCloseCode.OK
    writer: asyncio.Task[None] | None = None

    def send(self, text: str) -> None:
        if not self.closing:
            self.queue.put_nowait(text)

    def close(self, code: int = WSCloseCode.OK, *, abort: bool = False) -> None:
        """Close after the queued frames, or at once (``abort``, for a link drop)."""
        if abort:
            self.aborted = True
        if not self.closing:
            self.closing = True
            self.close_code = code
            self.queue.put_nowait(None)


@dataclass(eq=False)
class _Sent:
    message_id: str
    to: str
    kind: str
    text: str
    filename: str
    mimetype: str
    size: int | None
    sha256: str | None
    quoted_id: str
    ts: float
    extra: dict[str, Any] = field(default_factory=dict)  # a location's or a card's fields

    def as_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "message_id": self.message_id,
            "to": self.to,
            "kind": self.kind,
            "text": self.text,
            "filename": self.filename,
            "mimetype": self.mimetype,
            "size": self.size,
            "sha256": self.sha256,
            "quoted_id": self.quoted_id,
            "timestamp": _iso(self.ts),
        }


@dataclass(eq=False)
class _PhoneLog:
    """What a phone did; survives logout and re-pairing of that phone."""

    sent: list[_Sent] = field(default_factory=list)
    sent_by_id: dict[str, _Sent] = field(default_factory=dict)
    reads: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    delivered: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)


@dataclass(eq=False)
class _Link:
    phone: str
    jid: str
    account: str
    push_name: str = ""
    device: _Device | None = None
    # (seq, encoded frame) not yet acknowledged by the device, oldest first.
    outbox: deque[tuple[int, str]] = field(default_factory=deque)


@dataclass(eq=False)
class _Pairing:
    account: str
    device: _Device
    code: str = ""
    issued_at: float = 0.0
    pair_code: str = ""
    pair_phone: str = ""
    pair_issued_at: float = 0.0
    task: asyncio.Task[None] | None = None


# --- Input helpers -------------------------------------------------------------


def _obj(body: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return body


def _str(body: dict[str, Any], key: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(400, f"'{key}' is required")
        return default
    if not isinstance(value, str):
        raise ApiError(400, f"'{key}' must be a string")
    return value


def _digits(value: Any, key: str) -> str:
    """A phone number as digits; accepts ``+55 11 9...`` and ``5511...@s.whatsapp.net``."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ApiError(400, f"'{key}' must be a phone number")
    text = str(value)
    if "@" in text:
        text = _jid_user(text)
    for ch in "+ -()":
        text = text.replace(ch, "")
    if not text.isdigit() or not 5 <= len(text) <= 20:
        raise ApiError(400, f"'{key}' must be a phone number (digits), got {value!r}")
    return text


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"'{key}' must be a number")
    if not low <= value <= high:
        raise ApiError(400, f"'{key}' must be between {low} and {high}")
    return float(value)


def _timestamp(value: Any) -> float:
    if value is None or value == "":
        return _now()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:  # a naive time is taken as UTC
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
    raise ApiError(400, "'timestamp' must be ISO 8601 or epoch seconds")


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400:
            return web.json_response({"error": exc.reason}, status=exc.status)
        raise


# --- The server ----------------------------------------------------------------


class SimulatorServer:
    """The fake network. ``await start()`` binds (``port=0`` picks a free port) and sets ``url``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        qr_interval: float = 20.0,
        qr_rotations: int = 6,
    ) -> None:
        if qr_interval <= 0:
            raise ValueError("qr_interval must be positive")
        if qr_rotations < 1:
            raise ValueError("qr_rotations must be at least 1")
        self.host = host
        self.port = port
        self.qr_interval = qr_interval
        self.qr_rotations = qr_rotations
        self.url = ""
        # Names this run of the server: a client's remembered ``seq`` only
        # means something to the run that issued it.
        self.epoch = secrets.token_hex(6)
        self._seq = 0
        self._links: dict[str, list[_Link]] = {}  # phone -> its linked devices, oldest first
        self._logs: dict[str, _PhoneLog] = {}  # phone -> log
        self._devices: dict[str, _Device] = {}  # account -> its live socket
        self._sockets: set[_Device] = set()  # every open socket, even before hello
        self._pairings: dict[str, _Pairing] = {}  # account -> pairing
        self._qr_index: dict[str, _Pairing] = {}  # current QR code -> pairing
        self._pair_codes: dict[str, _Pairing] = {}  # pairing code -> pairing
        self._logged_out_phones: set[str] = set()
        self._unregistered: set[str] = set()  # phones with no WhatsApp account
        self._logged_out_jids: set[str] = set()
        self._device_numbers: dict[str, int] = {}  # phone -> last device number given
        self._media: dict[str, _Media] = {}  # sha256 -> media (content-addressed)
        self._sent_media: dict[str, str] = {}  # sent message id -> media id
        self._groups: dict[str, groups.Group] = {}  # group JID -> group
        self._runner: web.AppRunner | None = None

    # -- lifecycle --

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_error_middleware])
        r = app.router
        r.add_get("/api/health", self._api_health)
        r.add_get("/api/qr", self._api_qr)
        r.add_post("/api/qr/scan", self._api_qr_scan)
        r.add_get("/api/pair-codes", self._api_pair_codes)
        r.add_post("/api/pair-codes/confirm", self._api_pair_code_confirm)
        r.add_get("/api/numbers", self._api_numbers)
        r.add_post("/api/messages", self._api_messages)
        r.add_get("/api/sent", self._api_sent)
        r.add_get("/api/sent/{message_id}/media", self._api_sent_media)
        r.add_post("/api/receipts", self._api_receipts)
        r.add_get("/api/reads", self._api_reads)
        r.add_post("/api/drop", self._api_drop)
        r.add_post("/api/logout", self._api_logout)
        r.add_post("/api/replay", self._api_replay)
        r.add_post("/api/history", self._api_history)
        r.add_post("/api/groups", self._api_groups)
        r.add_post("/api/unregistered", self._api_unregistered)
        r.add_get("/api/lookups", self._api_lookups)
        r.add_get("/ws/device", self._ws_device)
        r.add_post("/media/upload", self._media_upload)
        r.add_get("/media/{media_id}", self._media_get)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self._app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        self.url = f"http://{host}:{self.port}"
        logger.info("WhatsApp simulator listening on %s", self.url)

    async def stop(self) -> None:
        for pairing in list(self._pairings.values()):
            self._end_pairing(pairing)
        devices = list(self._sockets)
        for device in devices:
            device.close(WSCloseCode.GOING_AWAY, abort=True)
        writers = [d.writer for d in devices if d.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        logger.info("WhatsApp simulator stopped")

    # -- device side --

    async def _ws_device(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, timeout=2.0)
        await ws.prepare(request)
        device = _Device(ws)
        self._sockets.add(device)
        device.writer = asyncio.create_task(self._write_loop(device))
        try:
            try:
                first = await ws.receive(timeout=HELLO_TIMEOUT)
                hello = (
                    _obj(json.loads(first.data), "hello") if first.type is WSMsgType.TEXT else {}
                )
            except (TimeoutError, ValueError, ApiError):
                hello = {}
            account = hello.get("account")
            if hello.get("t") != "hello" or not isinstance(account, str) or not account:
                device.send(_dumps({"t": "error", "error": "expected a hello frame"}))
                device.close(WSCloseCode.PROTOCOL_ERROR)
            else:
                device.account = account
                self._on_hello(device, hello)
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    logger.warning("simulator: bad frame from account %s", device.account)
                    continue
                if not isinstance(frame, dict):
                    continue
                try:
                    self._on_frame(device, frame)
                except Exception:  # a simulator bug must not take the socket down
                    logger.exception("simulator: frame from account %s failed", device.account)
        finally:
            self._detach(device)
            device.close()
            self._sockets.discard(device)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(device.writer), 3.0)
        return ws

    async def _write_loop(self, device: _Device) -> None:
        ws = device.ws
        try:
            while True:
                text = await device.queue.get()
                if text is None or device.aborted:
                    break
                await ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            logger.debug(
                "simulator: socket of account %s closed while writing: %s", device.account, exc
            )
        finally:
            with contextlib.suppress(Exception):
                await ws.close(code=device.close_code)

    def _on_hello(self, device: _Device, hello: dict[str, Any]) -> None:
        account = device.account
        old = self._devices.get(account)
        if old is not None:
            self._kick(old)
        self._devices[account] = device
        jid = hello.get("device_jid") or ""
        if not isinstance(jid, str):
            jid = ""
        if not jid:
            self._start_pairing(device)
            return
        phone = _jid_user(jid)
        if jid in self._logged_out_jids or phone in self._logged_out_phones:
            logger.info("simulator: account %s resumed a logged-out device", account)
            device.send(_dumps({"t": "logged_out", "reason": "the device was logged out"}))
            device.close()
            return
        if not phone.isdigit():
            device.send(_dumps({"t": "logged_out", "reason": f"not a device JID: {jid}"}))
            device.close()
            return
        link = next((k for k in self._links.get(phone, ()) if k.jid == jid), None)
        if link is None:
            # Unknown but never logged out (e.g. the simulator restarted):
            # accept it as linked, which keeps demos friendly.
            link = _Link(phone=phone, jid=jid, account=account)
            self._add_link(link)
            self._device_numbers[phone] = max(
                self._device_numbers.get(phone, 0), _device_number(jid)
            )
        elif link.device is not None and link.device is not device:
            self._kick(link.device)
        link.account = account
        last_seq = hello.get("last_seq")
        known = hello.get("epoch") == self.epoch and isinstance(last_seq, int)
        self._connect(device, link, last_seq if known else None)

    def _connect(self, device: _Device, link: _Link, last_seq: int | None) -> None:
        link.device = device
        device.link = link
        device.send(
            _dumps(
                {
                    "t": "connected",
                    "jid": link.jid,
                    "phone": link.phone,
                    "push_name": link.push_name,
                    "epoch": self.epoch,
                }
            )
        )
        if last_seq is not None:
            self._ack(link, last_seq)
        # Whatever the device has not acknowledged, in order: the messages that
        # arrived while it was away and any lost in flight on the last socket.
        for _, text in link.outbox:
            device.send(text)

    @staticmethod
    def _ack(link: _Link, seq: int) -> None:
        outbox = link.outbox
        while outbox and outbox[0][0] <= seq:
            outbox.popleft()

    def _kick(self, device: _Device) -> None:
        """Another connection takes over this account or number."""
        self._detach(device)
        device.send(_dumps({"t": "replaced"}))
        device.close()

    def _detach(self, device: _Device) -> None:
        if self._devices.get(device.account) is device:
            del self._devices[device.account]
        if device.link is not None and device.link.device is device:
            device.link.device = None
        device.link = None
        if device.pairing is not None:
            self._end_pairing(device.pairing)

    def _on_frame(self, device: _Device, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "ack":
            seq = frame.get("seq")
            if device.link is not None and isinstance(seq, int):
                self._ack(device.link, seq)
        elif kind == "req":
            rid = frame.get("id")
            try:
                answer = self._on_request(device, frame)
            except ApiError as exc:
                answer = {"error": exc.message}
            device.send(_dumps({"t": "res", "id": rid, **answer}))
            if frame.get("op") == "logout" and "error" not in answer:
                device.send(_dumps({"t": "logged_out", "reason": "logged out by this device"}))
                device.close()

    def _on_request(self, device: _Device, frame: dict[str, Any]) -> dict[str, Any]:
        op = frame.get("op")
        if op == "pair_code":
            return self._op_pair_code(device, frame)
        link = device.link
        if link is None:
            raise ApiError(409, "the device is not linked")
        if op == "send":
            return self._op_send(link, frame)
        if op == "read":
            return self._op_read(link, frame)
        if op == "check":
            return self._op_check(link, frame)
        if op == "group_info":
            group = self._groups.get(_str(frame, "jid", required=True))
            if group is None:
                raise ApiError(404, "unknown group")
            return group.answer()
        if op == "logout":
            logger.info("simulator: account %s logged out from the device", link.account)
            self._forget(link)
            return {}
        raise ApiError(400, f"unknown op {op!r}")

    def _op_send(self, link: _Link, frame: dict[str, Any]) -> dict[str, Any]:
        log = self._log(link.phone)
        message_id = _str(frame, "message_id") or _new_message_id()
        previous = log.sent_by_id.get(message_id)
        if previous is not None:
            # Idempotent: a retried send (e.g. after a timeout) is not sent twice.
            return {"message_id": previous.message_id, "timestamp": previous.ts}
        to = _str(frame, "to", required=True)
        kind = _str(frame, "kind", default="text")
        if kind not in KINDS:
            raise ApiError(400, f"unknown kind {kind!r}")
        size = sha256 = None
        mimetype = _str(frame, "mimetype")
        if kind in MEDIA_KINDS:
            media_id = _str(frame, "media_id", required=True)
            media = self._media.get(media_id)
            if media is None:
                raise ApiError(400, "unknown media_id: upload the media first")
            size, sha256 = len(media.data), media_id
            mimetype = mimetype or media.mimetype
            self._sent_media[message_id] = media_id
        extra: dict[str, Any] = {}
        if kind == "location":
            extra = {
                "latitude": _number(frame, "latitude", -90, 90),
                "longitude": _number(frame, "longitude", -180, 180),
                "location_name": _str(frame, "location_name"),
                "address": _str(frame, "address"),
            }
        elif kind == "contact":
            extra = {"display_name": _str(frame, "display_name")}
            if "BEGIN:VCARD" not in _str(frame, "text").upper():
                raise ApiError(400, "a contact's 'text' must be a vCard")
        sent = _Sent(
            message_id=message_id,
            to=to,
            kind=kind,
            text=_str(frame, "text"),
            filename=_str(frame, "filename"),
            mimetype=mimetype,
            size=size,
            sha256=sha256,
            quoted_id=_str(frame, "quoted_id"),
            ts=_now(),
            extra=extra,
        )
        log.sent.append(sent)
        log.sent_by_id[message_id] = sent
        return {"message_id": message_id, "timestamp": sent.ts}

    def _op_check(self, link: _Link, frame: dict[str, Any]) -> dict[str, Any]:
        phones = frame.get("phones")
        if not isinstance(phones, list) or not phones or len(phones) > 50:
            raise ApiError(400, "'phones' must be a list of 1 to 50 phone numbers")
        digits = [_digits(p, "phones") for p in phones]
        self._log(link.phone).lookups.append({"phones": digits, "timestamp": _iso(_now())})
        results = [
            {
                "phone": p,
                "on_whatsapp": p not in self._unregistered,
                "jid": "" if p in self._unregistered else _phone_jid(p),
            }
            for p in digits
        ]
        return {"results": results}

    def _op_read(self, link: _Link, frame: dict[str, Any]) -> dict[str, Any]:
        ids = frame.get("message_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "'message_ids' must be a non-empty list of strings")
        self._log(link.phone).reads.append(
            {
                "chat": _str(frame, "chat", required=True),
                "sender": _str(frame, "sender"),
                "message_ids": ids,
                "timestamp": _iso(_now()),
            }
        )
        return {}

    def _op_pair_code(self, device: _Device, frame: dict[str, Any]) -> dict[str, Any]:
        pairing = device.pairing
        if pairing is None:
            raise ApiError(409, "not pairing: the device is already linked")
        phone = _digits(frame.get("phone"), "phone")
        if pairing.pair_code:
            self._pair_codes.pop(pairing.pair_code, None)
        code = "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(8))
        pairing.pair_code, pairing.pair_phone, pairing.pair_issued_at = code, phone, _now()
        self._pair_codes[code] = pairing
        logger.info("simulator: account %s asked for a pairing code", pairing.account)
        return {"code": code}

    # -- pairing --

    def _start_pairing(self, device: _Device) -> None:
        pairing = _Pairing(account=device.account, device=device)
        device.pairing = pairing
        self._pairings[device.account] = pairing
        pairing.task = asyncio.create_task(self._rotate_qr(pairing))

    async def _rotate_qr(self, pairing: _Pairing) -> None:
        device = pairing.device
        for _ in range(self.qr_rotations):
            self._qr_index.pop(pairing.code, None)
            # Same shape as WhatsApp's: ref,noise key,identity key,adv secret.
            keys = ",".join(base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(3))
            pairing.code = f"2@{secrets.token_urlsafe(24)},{keys}"
            pairing.issued_at = _now()
            self._qr_index[pairing.code] = pairing
            device.send(_dumps({"t": "qr", "code": pairing.code}))
            await asyncio.sleep(self.qr_interval)
        logger.info("simulator: pairing of account %s expired", pairing.account)
        pairing.task = None  # so _end_pairing does not cancel the running task
        self._end_pairing(pairing)
        device.send(_dumps({"t": "pairing_expired"}))
        device.close()

    def _end_pairing(self, pairing: _Pairing) -> None:
        if self._pairings.get(pairing.account) is pairing:
            del self._pairings[pairing.account]
        if self._qr_index.get(pairing.code) is pairing:
            del self._qr_index[pairing.code]
        if self._pair_codes.get(pairing.pair_code) is pairing:
            del self._pair_codes[pairing.pair_code]
        if pairing.device.pairing is pairing:
            pairing.device.pairing = None
        if pairing.task is not None:
            pairing.task.cancel()
            pairing.task = None

    def _complete_pairing(self, pairing: _Pairing, phone: str, push_name: str) -> _Link:
        self._end_pairing(pairing)
        device = pairing.device
        self._logged_out_phones.discard(phone)
        number = self._device_numbers.get(phone, 0) + 1
        self._device_numbers[phone] = number
        link = _Link(
            phone=phone,
            jid=f"{phone}:{number}@s.whatsapp.net",
            account=pairing.account,
            push_name=push_name,
        )
        self._add_link(link)
        self._log(phone)
        device.send(
            _dumps({"t": "paired", "jid": link.jid, "phone": phone, "push_name": push_name})
        )
        self._connect(device, link, None)
        logger.info("simulator: account %s linked", pairing.account)
        return link

    def _add_link(self, link: _Link) -> None:
        """A phone keeps up to MAX_COMPANIONS linked devices; one more logs the oldest out."""
        links = self._links.setdefault(link.phone, [])
        links.append(link)
        while len(links) > MAX_COMPANIONS:
            logger.info("simulator: account %s unlinked, the oldest device", links[0].account)
            self._forget(links[0], reason="the phone linked a new device; this was the oldest")

    def _forget(self, link: _Link, *, reason: str = "", phone_logout: bool = False) -> None:
        """Unlink: the device JID is dead from now on; ``reason`` tells its socket."""
        links = self._links.get(link.phone, [])
        if link in links:
            links.remove(link)
            if not links:
                del self._links[link.phone]
        self._logged_out_jids.add(link.jid)
        if phone_logout:
            self._logged_out_phones.add(link.phone)
        device, link.device = link.device, None
        link.outbox.clear()
        if device is not None:
            device.link = None
            if reason:
                device.send(_dumps({"t": "logged_out", "reason": reason}))
                device.close()

    # -- helpers --

    def _log(self, phone: str) -> _PhoneLog:
        log = self._logs.get(phone)
        if log is None:
            log = self._logs[phone] = _PhoneLog()
        return log

    def _linked(self, body: dict[str, Any], key: str = "phone") -> list[_Link]:
        """The devices linked to the phone in ``body[key]``, oldest first."""
        phone = _digits(body.get(key), key)
        links = self._links.get(phone)
        if not links:
            raise ApiError(400, f"unknown number {phone}: not linked")
        return list(links)

    def _deliver(self, link: _Link, frame: dict[str, Any]) -> None:
        self._seq += 1
        frame["seq"] = self._seq
        text = _dumps(frame)
        link.outbox.append((self._seq, text))
        if link.device is not None:
            link.device.send(text)

    def _remember(self, link: _Link, message: dict[str, Any]) -> None:
        delivered = self._log(link.phone).delivered
        delivered[message["message_id"]] = message
        delivered.move_to_end(message["message_id"])
        if len(delivered) > REPLAY_MEMORY:
            delivered.popitem(last=False)

    def _store_media(self, data: bytes, mimetype: str) -> str:
        media_id = hashlib.sha256(data).hexdigest()
        if media_id not in self._media:
            self._media[media_id] = _Media(data, mimetype)
        return media_id

    def _parse_message(self, body: Any, link: _Link | None) -> dict[str, Any]:
        """A control-API message object -> the wire form of an inbound message."""
        body = _obj(body, "message")
        kind = _str(body, "kind", default="text")
        if kind not in KINDS:
            raise ApiError(400, f"unknown kind {kind!r}; one of {', '.join(sorted(KINDS))}")
        from_me = body.get("from_me", False)
        if not isinstance(from_me, bool):
            raise ApiError(400, "'from_me' must be true or false")
        phone = _digits(body["from"], "from") if body.get("from") not in (None, "") else ""
        lid = _str(body, "lid")
        if lid and (not lid.endswith("@lid") or not _jid_user(lid).isdigit()):
            raise ApiError(400, "'lid' must look like '123456@lid'")
        group = body.get("group")
        group_jid = ""
        if group is not None:
            group_jid = _str(_obj(group, "'group'"), "jid", required=True)
            if not group_jid.endswith("@g.us"):
                raise ApiError(400, "'group.jid' must end with @g.us")
        contact = lid or (_phone_jid(phone) if phone else "")
        contact_alt = _phone_jid(phone) if lid and phone else ""
        if not contact and not (from_me and group_jid):
            raise ApiError(400, "'from' (contact phone) or 'lid' is required")
        if from_me:
            if link is None:
                raise ApiError(400, "'from_me' needs a linked number")
            sender, sender_alt, push_name = _phone_jid(link.phone), "", link.push_name
        else:
            sender, sender_alt, push_name = contact, contact_alt, _str(body, "push_name")
        message: dict[str, Any] = {
            "message_id": _str(body, "message_id") or _new_message_id(),
            "chat": group_jid or contact,
            "sender": sender,
            "timestamp": _timestamp(body.get("timestamp")),
            "kind": kind,
        }
        optional = {
            "text": _str(body, "text"),
            "sender_alt": sender_alt,
            "chat_alt": "" if group_jid else contact_alt,
            "push_name": push_name,
            "from_me": from_me,
            "is_group": bool(group_jid),
            "quoted_id": _str(body, "quoted_id"),
        }
        if kind == "text" and not optional["text"]:
            raise ApiError(400, "'text' is required for a text message")
        if kind in MEDIA_KINDS:
            optional.update(self._parse_media(body, kind))
        elif kind == "location":
            optional["latitude"] = _number(body, "latitude", -90, 90)
            optional["longitude"] = _number(body, "longitude", -180, 180)
            optional["location_name"] = _str(body, "location_name")
        elif kind == "contact":
            display_name = _str(body, "display_name")
            vcard = _str(body, "vcard")
            if not vcard and not display_name:
                raise ApiError(400, "'vcard' or 'display_name' is required for a contact")
            if not vcard:
                vcard = f"BEGIN:VCARD\nVERSION:3.0\nFN:{display_name}\nEND:VCARD"
            optional["text"] = vcard
        # Defaults are left out to keep frames small; the client fills them in.
        message.update({k: v for k, v in optional.items() if v not in ("", False, None)})
        return message

    def _parse_media(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        encoded = body.get("media_base64")
        mimetype = _str(body, "mimetype")
        filename = _str(body, "filename")
        if encoded in (None, ""):
            data, default_type, default_name = samples.sample(kind)
            if mimetype and mimetype != default_type:
                raise ApiError(400, "'mimetype' without 'media_base64' must be the sample's type")
            mimetype = default_type
            filename = filename or default_name
        else:
            if not isinstance(encoded, str):
                raise ApiError(400, "'media_base64' must be a base64 string")
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "'media_base64' is not valid base64") from None
            if not data:
                raise ApiError(400, "'media_base64' is empty")
            mimetype = mimetype or samples.SAMPLES[kind][1]
        if kind == "document" and not filename:
            filename = "document" + (mimetypes.guess_extension(mimetype.split(";")[0]) or "")
        return {
            "media_id": self._store_media(data, mimetype),
            "mimetype": mimetype,
            "filename": filename,
            "file_size": len(data),
        }

    # -- control API --

    async def _api_health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _api_qr(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"account": p.account, "code": p.code, "issued_at": _iso(p.issued_at)}
                for p in self._pairings.values()
                if p.code
            ]
        )

    async def _api_qr_scan(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        phone = _digits(body.get("phone"), "phone")
        push_name = _str(body, "push_name")
        code, account = _str(body, "code"), _str(body, "account")
        if not code and not account:
            raise ApiError(400, "'code' or 'account' is required")
        pairing = self._qr_index.get(code) if code else self._pairings.get(account)
        if pairing is None or not pairing.code or (account and pairing.account != account):
            raise ApiError(409, "no such QR code is pending (expired, rotated or already used)")
        link = self._complete_pairing(pairing, phone, push_name)
        return web.json_response({"account": link.account, "phone": phone, "jid": link.jid})

    async def _api_pair_codes(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "account": p.account,
                    "code": code,
                    "phone": p.pair_phone,
                    "issued_at": _iso(p.pair_issued_at),
                }
                for code, p in self._pair_codes.items()
            ]
        )

    async def _api_pair_code_confirm(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        code = _str(body, "code", required=True).replace("-", "").upper()
        pairing = self._pair_codes.get(code)
        if pairing is None:
            raise ApiError(409, "no such pairing code is pending")
        link = self._complete_pairing(pairing, pairing.pair_phone, _str(body, "push_name"))
        return web.json_response({"account": link.account, "phone": link.phone, "jid": link.jid})

    async def _api_numbers(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "account": link.account,
                    "phone": link.phone,
                    "jid": link.jid,
                    "push_name": link.push_name,
                    "connected": link.device is not None,
                    "queued": len(link.outbox),
                }
                for links in self._links.values()
                for link in links
            ]
        )

    async def _api_messages(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        items = body if isinstance(body, list) else [body]
        # Validate the whole batch before delivering any of it.
        parsed = []
        for index, item in enumerate(items):
            try:
                links = self._linked(_obj(item, "message"), "to")
                parsed.append((links, self._parse_message(item, links[-1])))
            except ApiError as exc:
                if isinstance(body, list):
                    raise ApiError(exc.status, f"message {index}: {exc.message}") from None
                raise
        for links, message in parsed:
            self._remember(links[0], message)
            for link in links:
                self._deliver(link, {"t": "msg", "m": message})
        if isinstance(body, list):
            return web.json_response({"message_ids": [m["message_id"] for _, m in parsed]})
        links, message = parsed[0]
        queued = any(link.device is None for link in links)
        return web.json_response({"message_id": message["message_id"], "queued": queued})

    def _phone_log(self, request: web.Request) -> _PhoneLog:
        phone = _digits(request.query.get("phone"), "phone")
        if phone not in self._logs and phone not in self._links:
            raise ApiError(400, f"unknown number {phone}")
        return self._log(phone)

    async def _api_sent(self, request: web.Request) -> web.Response:
        return web.json_response([s.as_json() for s in self._phone_log(request).sent])

    async def _api_sent_media(self, request: web.Request) -> web.Response:
        media_id = self._sent_media.get(request.match_info["message_id"])
        media = self._media.get(media_id) if media_id else None
        if media is None:
            raise ApiError(404, "no sent media with that message id")
        return web.Response(body=media.data, headers={"Content-Type": media.mimetype})

    async def _api_receipts(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        links = self._linked(body)
        ids = body.get("message_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ApiError(400, "'message_ids' must be a non-empty list of message ids")
        status = _str(body, "status", required=True)
        if status not in RECEIPT_STATUSES:
            raise ApiError(400, f"'status' must be one of {', '.join(sorted(RECEIPT_STATUSES))}")
        # The chat is where the first message went; the sender is the contact
        # who read it (the same jid in a direct chat, a participant in a group).
        sent = self._log(links[0].phone).sent_by_id.get(ids[0])
        sender = _phone_jid(_digits(body["from"], "from")) if body.get("from") else ""
        chat = sent.to if sent is not None else sender
        if not chat:
            raise ApiError(400, "'from' is required when the message ids are unknown")
        frame = {
            "t": "receipt",
            "chat": chat,
            "sender": sender or chat,
            "message_ids": ids,
            "status": status,
            "timestamp": _now(),
        }
        for link in links:
            self._deliver(link, dict(frame))
        return web.json_response({"ok": True})

    async def _api_reads(self, request: web.Request) -> web.Response:
        return web.json_response(self._phone_log(request).reads)

    async def _api_drop(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        if body.get("all") is True:
            devices = list(self._sockets)
        else:
            devices = [k.device for k in self._linked(body) if k.device is not None]
        for device in devices:
            # Detach now, not when the socket handler notices: anything sent
            # from here on is queued for the next connection.
            self._detach(device)
            device.close(CLOSE_DROPPED, abort=True)
        logger.info("simulator: dropped %d device socket(s)", len(devices))
        return web.json_response({"dropped": len(devices)})

    async def _api_logout(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        links = self._linked(body)
        account = _str(body, "account")
        if account:
            # One device, from the phone's list of linked devices: the others stay.
            links = [k for k in links if k.account == account]
            if not links:
                raise ApiError(400, f"account {account} is not linked to this phone")
        for link in links:
            logger.info("simulator: account %s logged out from the phone", link.account)
            self._forget(link, reason="logged out from the phone", phone_logout=not account)
        return web.json_response({"ok": True})

    async def _api_replay(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        links = self._linked(body)
        message_id = _str(body, "message_id", required=True)
        phone = links[0].phone
        message = self._log(phone).delivered.get(message_id)
        if message is None:
            raise ApiError(400, f"message {message_id} was not delivered to {phone}")
        for link in links:
            self._deliver(link, {"t": "msg", "m": message})
        return web.json_response({"message_id": message_id})

    async def _api_unregistered(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        phones = body.get("phones")
        if not isinstance(phones, list) or not phones:
            raise ApiError(400, "'phones' must be a non-empty list of phone numbers")
        registered = body.get("registered", False)
        if not isinstance(registered, bool):
            raise ApiError(400, "'registered' must be true or false")
        digits = {_digits(p, "phones") for p in phones}
        if registered:
            self._unregistered -= digits
        else:
            self._unregistered |= digits
        return web.json_response({"unregistered": sorted(self._unregistered)})

    async def _api_lookups(self, request: web.Request) -> web.Response:
        return web.json_response(self._phone_log(request).lookups)

    async def _api_history(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        links = self._linked(body)
        items = body.get("messages")
        if not isinstance(items, list):
            raise ApiError(400, "'messages' must be a list")
        messages = []
        for index, item in enumerate(items):
            try:
                messages.append(self._parse_message(item, links[-1]))
            except ApiError as exc:
                raise ApiError(exc.status, f"message {index}: {exc.message}") from None
        for link in links:
            self._deliver(link, {"t": "history", "messages": messages})
        return web.json_response({"count": len(messages)})

    async def _api_groups(self, request: web.Request) -> web.Response:
        body = _obj(await _json_body(request))
        jid = _str(body, "jid", required=True)
        if not jid.endswith("@g.us"):
            raise ApiError(400, "'jid' must end with @g.us")
        group = dataclasses.replace(self._groups.get(jid) or groups.Group(jid=jid))
        try:
            groups.update(
                group,
                body,
                digits=_digits,
                store_picture=lambda data: self._store_media(data, "image/jpeg"),
            )
        except groups.GroupError as exc:
            raise ApiError(400, str(exc)) from None
        self._groups[jid] = group
        notified = 0
        for phone in dict.fromkeys(group.phones()):
            for link in self._links.get(phone, []):
                self._deliver(link, {"t": "group", "jid": jid})
                notified += 1
        return web.json_response({"jid": jid, "notified": notified})

    # -- media servers --

    async def _media_upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        if not data:
            raise ApiError(400, "empty upload")
        media_id = self._store_media(data, request.content_type or "application/octet-stream")
        return web.json_response({"media_id": media_id, "sha256": media_id, "size": len(data)})

    async def _media_get(self, request: web.Request) -> web.Response:
        media = self._media.get(request.match_info["media_id"])
        if media is None:
            raise ApiError(404, "no such media")
        return web.Response(body=media.data, headers={"Content-Type": media.mimetype})


# --- Running it ----------------------------------------------------------------


@contextlib.contextmanager
def run_in_thread(**kwargs: Any) -> Iterator[SimulatorServer]:
    """Run a :class:`SimulatorServer` on its own loop in a background thread.

    For sync tests: ``with run_in_thread(qr_interval=0.2) as sim: sim.url``.
    Port 0 (the default) binds a free port.
    """
    server = SimulatorServer(**kwargs)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=run, name="whatsapp-simulator", daemon=True)
    thread.start()
    try:
        ready.wait(10)
        if failure:
            raise failure[0]
        if not server.url:
            raise RuntimeError("the simulator did not start within 10 s")
        yield server
    finally:
        if not failure and loop.is_running():
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if failure:
            loop.close()


async def serve(server: SimulatorServer, on_ready: Callable[[str], None] | None = None) -> None:
    """Run ``server`` until SIGINT or SIGTERM, then shut it down cleanly."""
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            on_ready(server.url)
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await server.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options, shared by ``manage.py whatsapp_simulator`` and ``-m``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Interface to bind (default: %(default)s; keep it on loopback).",
    )
    parser.add_argument(
        "--port", type=int, default=7071, help="TCP port to listen on (default: %(default)s)."
    )
    parser.add_argument(
        "--qr-interval",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="Seconds each QR code stays valid before the next one (default: %(default)s).",
    )
    parser.add_argument(
        "--qr-rotations",
        type=int,
        default=6,
        metavar="N",
        help="QR codes shown before an unanswered pairing expires (default: %(default)s).",
    )


DESCRIPTION = (
    "Run the fake WhatsApp network (for tests, demos and benchmarks; never a substitute for "
    "WhatsApp). Gateway sessions with the simulator backend connect to ws://HOST:PORT/ws/device; "
    "drive the contacts and phones with the JSON control API under http://HOST:PORT/api/ "
    "(health, qr, qr/scan, pair-codes, numbers, messages, sent, receipts, reads, drop, "
    "logout, replay, history; documented in whatsapp/simulator/server.py). "
    'Example: link number 1 by "scanning" its QR with curl -X POST '
    'http://127.0.0.1:7071/api/qr/scan -d \'{"account": "1", "phone": "5511999990001"}\'. '
    "Stop it with Ctrl-C or SIGTERM."
)
