"""The gateway session for the simulated WhatsApp network (``whatsapp/simulator``).

It connects the way the real gateway connects to WhatsApp: one persistent
WebSocket (``{url}/ws/device``, ``url`` from ``config.options["url"]``) held by
a thread with its own event loop inside the number's child process. It pairs
by QR or pairing code, reconnects by itself after a drop (backoff 0.2 s
doubling to 5 s, with jitter) and reports everything through ``emit``.
Media go through the simulator's HTTP "media servers" (``/media/...``), so
frames on the socket stay small. The wire protocol is described in
``whatsapp/simulator/server.py``.

Lifecycle: ``start()`` -> STARTING -> WAITING_QR (QRCode events; PAIRING after
a pairing code) -> Paired -> CONNECTED <-> DISCONNECTED ... The session ends
by itself with PAIRING_EXPIRED, LOGGED_OUT, or STOPPED when another
connection takes its number over; otherwise ``stop()`` ends it with STOPPED
(not emitted again after a session ended by itself). A session runs once.
Commands raise ``GatewayError(transient=True)`` while not connected, and a
non-transient one after LOGGED_OUT or when the simulator refuses the input.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import json
import logging
import mimetypes
import os
import random
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from . import base
from . import simulator_wire as wire
from .simulator_wire import _dumps, _utc

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:7071"
PROTOCOL_VERSION = 1
BACKOFF_START = 0.2
BACKOFF_MAX = 5.0
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 15.0
TRANSFER_TIMEOUT = 120.0  # media upload / download
# Acks are batched: one frame per burst instead of one per message.
ACK_DELAY = 0.02
MAX_FRAME = 64 * 1024 * 1024
# Detects a simulator that stopped answering without closing the socket.
HEARTBEAT = 15.0

T = TypeVar("T")


class _Ended(Exception):
    """The server ended the session for good (logged out, pairing expired, replaced)."""

    def __init__(self, state: base.ConnState, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail


class SimulatorSession(base.Session):
    def __init__(self, config: base.SessionConfig, emit: base.Emit) -> None:
        super().__init__(config, emit)
        url = (config.options.get("url") or DEFAULT_URL).rstrip("/")
        if url.startswith(("ws://", "wss://")):
            url = "http" + url[2:]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"simulator url must be http://host:port, got {url!r}")
        self._base_url = url
        self._device_jid = config.device_jid
        # Guards the thread/loop handles and the "ended" flags shared with callers.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._closed = False  # the loop takes no more work
        self._ended: base.ConnState | None = None  # set when the server ended the session
        self._connected = False  # read from any thread, written by the loop
        # Owned by the loop thread.
        self._state: base.ConnState | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._linked = False
        self._pairing = False
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._epoch = ""
        self._last_seq = 0  # the newest frame seen (redeliveries up to it are skipped)
        # Frames are acknowledged to the simulator only once the worker confirms it
        # stored them: (child event number, simulator seq), oldest first.
        self._unconfirmed: collections.deque[tuple[int, int]] = collections.deque()
        self._ackable_seq = 0
        self._ack_wanted: asyncio.Event | None = None

    # --- lifecycle (any thread) ---

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._run, name=f"wa-simulator-{self.config.account}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if not self._closed:
                loop.call_soon_threadsafe(self._cancel_main)
        if thread is threading.current_thread():
            return  # called from an emit handler: the loop ends after it returns
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "simulator session %s did not stop in %.1f s", self.config.account, timeout
            )

    def is_connected(self) -> bool:
        return self._connected

    def _cancel_main(self) -> None:
        if self._main_task is not None:
            self._main_task.cancel()

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._main_task = loop.create_task(self._main())
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass  # stop()
        except Exception:
            logger.exception("simulator session %s crashed", self.config.account)
        finally:
            with self._lock:
                self._closed = True
            self._connected = False
            try:
                # Commands submitted just before _closed was set still run
                # (and fail fast: there is no socket any more).
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                # DNS lookups (a "localhost" URL) run on the default executor's threads.
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
            if self._ended is None:
                self._set_state(base.ConnState.STOPPED)

    async def _main(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        )
        self._ack_wanted = asyncio.Event()
        self._set_state(base.ConnState.STARTING)
        backoff = BACKOFF_START
        try:
            while True:
                detail = "connection to the simulator lost"
                try:
                    accepted = await self._connection()
                except _Ended as end:
                    with self._lock:
                        self._ended = end.state
                    self._set_state(end.state, end.detail)
                    return
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    accepted = False
                    detail = f"simulator unreachable: {exc}"
                if accepted:
                    backoff = BACKOFF_START
                self._set_state(base.ConnState.DISCONNECTED, detail)
                await asyncio.sleep(min(BACKOFF_MAX, backoff * random.uniform(0.8, 1.2)))
                backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            await self._http.close()

    async def _connection(self) -> bool:
        """One WebSocket connection; returns whether the server accepted it."""
        assert self._http is not None and self._ack_wanted is not None
        ws = await self._http.ws_connect(
            f"{self._base_url}/ws/device",
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0),
            heartbeat=HEARTBEAT,
            max_msg_size=MAX_FRAME,
        )
        accepted = False
        acker = None
        try:
            await ws.send_str(
                _dumps(
                    {
                        "t": "hello",
                        "v": PROTOCOL_VERSION,
                        "account": self.config.account,
                        "device_jid": self._device_jid,
                        "epoch": self._epoch,
                        "last_seq": self._last_seq,
                    }
                )
            )
            self._ws = ws
            acker = asyncio.create_task(self._ack_loop(ws))
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                    accepted = accepted or frame.get("t") in ("qr", "connected")
                    self._on_frame(frame)
                except (ValueError, KeyError, TypeError, AttributeError):
                    # A malformed frame is a simulator bug; skip it, keep the link.
                    logger.exception("simulator session %s: bad frame", self.config.account)
            return accepted
        finally:
            self._ws = None
            self._linked = self._pairing = self._connected = False
            if acker is not None:
                acker.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        base.GatewayError("connection to the simulator lost", transient=True)
                    )
            self._pending.clear()
            await ws.close()

    async def _ack_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self._ack_wanted is not None
        acked = 0
        try:
            while True:
                await self._ack_wanted.wait()
                self._ack_wanted.clear()
                await asyncio.sleep(ACK_DELAY)
                if self._ackable_seq > acked:
                    acked = self._ackable_seq
                    await ws.send_str(_dumps({"t": "ack", "seq": acked}))
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            # The socket is closing; unacked frames come again on the next one.
            logger.debug("simulator session %s: ack not sent", self.config.account)

    # --- frames from the simulator (loop thread) ---

    def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "msg":
            if self._fresh(frame):
                self._emit_data(frame, wire.inbound(frame["m"], self._base_url))
        elif kind == "res":
            future = self._pending.pop(frame.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(frame)
        elif kind == "receipt":
            if self._fresh(frame):
                self._emit_data(frame, wire.receipt(frame))
        elif kind == "group":
            if self._fresh(frame):
                self._emit_data(frame, base.GroupChanged(jid=frame["jid"]))
        elif kind == "history":
            if self._fresh(frame):
                messages = tuple(wire.inbound(m, self._base_url) for m in frame["messages"])
                self._emit_data(frame, base.HistoryBatch(messages=messages))
        elif kind == "qr":
            self._pairing = True
            if self._state is not base.ConnState.PAIRING:
                self._set_state(base.ConnState.WAITING_QR)
            self._emit(base.QRCode(code=frame["code"]))
        elif kind == "paired":
            self._device_jid = frame["jid"]  # reconnects resume this device
            self._pairing = False
            self._emit(
                base.Paired(jid=frame["jid"], phone=frame["phone"], push_name=frame["push_name"])
            )
        elif kind == "connected":
            if frame["epoch"] != self._epoch:
                # A new simulator run numbers its frames from scratch.
                self._epoch, self._last_seq = frame["epoch"], 0
                self._ackable_seq = 0
                self._unconfirmed.clear()
            self._linked = self._connected = True
            self._set_state(base.ConnState.CONNECTED)
        elif kind == "logged_out":
            raise _Ended(base.ConnState.LOGGED_OUT, frame.get("reason", ""))
        elif kind == "pairing_expired":
            raise _Ended(base.ConnState.PAIRING_EXPIRED, "the QR code was not scanned in time")
        elif kind == "replaced":
            raise _Ended(base.ConnState.STOPPED, "replaced by another connection")
        elif kind == "error":
            logger.warning("simulator refused session %s: %s", self.config.account, frame)
        else:
            logger.debug("simulator session %s: unknown frame %r", self.config.account, kind)

    def _fresh(self, frame: dict[str, Any]) -> bool:
        """Skip a frame already handled (redelivered after a drop before our ack)."""
        seq = frame.get("seq")
        if not isinstance(seq, int):
            return True
        if seq <= self._last_seq:
            return False
        self._last_seq = seq
        return True

    def _emit_data(self, frame: dict[str, Any], event: base.Event) -> None:
        """Emit a numbered data frame; ack it once the worker confirms it (or at once
        when nobody numbers events, e.g. a session used directly in a test)."""
        number = self._emit(event)
        seq = frame.get("seq")
        if not isinstance(seq, int):
            return
        if number is None:
            self._ackable_seq = max(self._ackable_seq, seq)
            assert self._ack_wanted is not None
            self._ack_wanted.set()
        else:
            self._unconfirmed.append((number, seq))

    def confirmed(self, seq: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_confirmed, seq)
            except RuntimeError:  # the loop is closing: nothing left to ack
                pass

    def _on_confirmed(self, number: int) -> None:
        advanced = False
        while self._unconfirmed and self._unconfirmed[0][0] <= number:
            _, seq = self._unconfirmed.popleft()
            self._ackable_seq = max(self._ackable_seq, seq)
            advanced = True
        if advanced and self._ack_wanted is not None:
            self._ack_wanted.set()

    def _set_state(self, state: base.ConnState, detail: str = "") -> None:
        if state is self._state:
            return
        self._state = state
        logger.info("simulator session %s: %s %s", self.config.account, state.value, detail)
        self._emit(base.StateChanged(state=state, detail=detail))

    def _emit(self, event: base.Event) -> int | None:
        try:
            return self.emit(event)
        except Exception:  # a broken listener must not kill the connection
            logger.exception("simulator session %s: emit failed", self.config.account)
            return None

    # --- commands (worker threads) ---

    def _call(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
        if threading.current_thread() is self._thread:
            raise base.GatewayError("commands cannot run on the session's own thread")
        with self._lock:
            if self._ended is base.ConnState.LOGGED_OUT:
                raise base.GatewayError("the device is logged out", transient=False)
            loop = self._loop
            if loop is None or self._closed:
                raise base.GatewayError("the session is not running", transient=True)
            # Submitted under the lock: _run sets _closed under it before its
            # final sweep, so the coroutine is sure to run (and fail fast).
            future = asyncio.run_coroutine_threadsafe(factory(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise base.GatewayError(
                "the simulator did not answer in time", transient=True
            ) from None
        except concurrent.futures.CancelledError:
            raise base.GatewayError("the session stopped", transient=True) from None

    async def _request(
        self, op: str, fields: dict[str, Any], *, linked: bool = True
    ) -> dict[str, Any]:
        ws = self._ws
        ready = self._linked if linked else self._pairing
        if ws is None or not ready:
            raise base.GatewayError(
                "not connected to the simulator" if linked else "not waiting for a pairing",
                transient=True,
            )
        assert self._loop is not None
        self._next_id += 1
        rid = self._next_id
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[rid] = future
        try:
            await ws.send_str(_dumps({"t": "req", "id": rid, "op": op, **fields}))
            answer = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise base.GatewayError(
                f"connection to the simulator lost: {exc}", transient=True
            ) from None
        except TimeoutError:
            raise base.GatewayError(
                "the simulator did not answer in time", transient=True
            ) from None
        finally:
            self._pending.pop(rid, None)
        if "error" in answer:
            raise base.GatewayError(answer["error"], transient=False)
        return answer

    def send_text(self, cmd: base.SendText) -> base.SendResult:
        return self._send(
            {
                "message_id": cmd.message_id,
                "to": cmd.to,
                "kind": "text",
                "text": cmd.text,
                "quoted_id": cmd.quoted_id,
            }
        )

    def _send(self, fields: dict[str, Any]) -> base.SendResult:
        answer = self._call(lambda: self._request("send", fields), REQUEST_TIMEOUT + 5)
        return base.SendResult(message_id=answer["message_id"], timestamp=_utc(answer["timestamp"]))

    def send_location(self, cmd: base.SendLocation) -> base.SendResult:
        return self._send(
            {
                "message_id": cmd.message_id,
                "to": cmd.to,
                "kind": "location",
                "latitude": cmd.latitude,
                "longitude": cmd.longitude,
                "location_name": cmd.name,
                "address": cmd.address,
                "quoted_id": cmd.quoted_id,
            }
        )

    def send_contact(self, cmd: base.SendContact) -> base.SendResult:
        return self._send(
            {
                "message_id": cmd.message_id,
                "to": cmd.to,
                "kind": "contact",
                "text": cmd.vcard,
                "display_name": cmd.display_name,
                "quoted_id": cmd.quoted_id,
            }
        )

    def check_phones(self, cmd: base.CheckPhones) -> tuple[base.PhoneCheck, ...]:
        fields = {"phones": list(cmd.phones)}
        answer = self._call(lambda: self._request("check", fields), REQUEST_TIMEOUT + 5)
        return tuple(
            base.PhoneCheck(phone=r["phone"], on_whatsapp=bool(r["on_whatsapp"]), jid=r["jid"])
            for r in answer["results"]
        )

    def get_group_info(self, cmd: base.GetGroupInfo) -> base.GroupInfo:
        async def ask() -> base.GroupInfo:
            answer = await self._request("group_info", {"jid": cmd.jid})
            info = wire.group_info(answer)
            picture = answer.get("picture_id") or ""
            if not picture or not cmd.picture_dest or picture == cmd.known_picture_id:
                return info
            data = await self._transfer("GET", f"/media/{picture}")
            base.write_file(cmd.picture_dest, data)
            return dataclasses.replace(info, picture_path=cmd.picture_dest)

        return self._call(ask, REQUEST_TIMEOUT + TRANSFER_TIMEOUT + 5)

    def send_media(self, cmd: base.SendMedia) -> base.SendResult:
        if cmd.kind not in base.MEDIA_KINDS:
            raise base.GatewayError(f"send_media cannot send a {cmd.kind.value} message")
        try:
            data = Path(cmd.path).read_bytes()  # on the caller's thread: keeps the loop free
        except OSError as exc:
            raise base.GatewayError(f"cannot read {cmd.path}: {exc}") from None
        filename = cmd.filename
        if not filename and cmd.kind is base.MessageKind.DOCUMENT:
            filename = os.path.basename(cmd.path)
        mimetype = (
            cmd.mimetype
            or mimetypes.guess_type(filename or cmd.path)[0]
            or "application/octet-stream"
        )

        async def send() -> dict[str, Any]:
            if not self._linked:
                raise base.GatewayError("not connected to the simulator", transient=True)
            # Upload first, like WhatsApp's media servers, then a small frame.
            upload = await self._transfer("POST", "/media/upload", data=data, mimetype=mimetype)
            fields = {
                "message_id": cmd.message_id,
                "to": cmd.to,
                "kind": cmd.kind.value,
                "text": cmd.caption,
                "filename": filename,
                "mimetype": mimetype,
                "media_id": json.loads(upload)["media_id"],
                "quoted_id": cmd.quoted_id,
            }
            return await self._request("send", fields)

        answer = self._call(send, TRANSFER_TIMEOUT + REQUEST_TIMEOUT + 5)
        return base.SendResult(message_id=answer["message_id"], timestamp=_utc(answer["timestamp"]))

    def download_media(self, cmd: base.DownloadMedia) -> base.DownloadResult:
        try:
            url = json.loads(cmd.media_ref)["url"]
        except (ValueError, KeyError, TypeError):
            raise base.GatewayError("not a simulator media reference") from None

        async def fetch() -> bytes:
            if not self._linked:
                raise base.GatewayError("not connected to the simulator", transient=True)
            return await self._transfer("GET", url)

        data = self._call(fetch, TRANSFER_TIMEOUT + 5)
        # Written on the caller's thread: the loop stays free.
        return base.DownloadResult(path=cmd.dest, size=base.write_file(cmd.dest, data))

    async def _transfer(
        self, method: str, url: str, *, data: bytes | None = None, mimetype: str = ""
    ) -> bytes:
        assert self._http is not None
        if url.startswith("/"):
            url = self._base_url + url
        headers = {"Content-Type": mimetype} if mimetype else None
        try:
            async with self._http.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=TRANSFER_TIMEOUT),
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise base.GatewayError(f"media transfer failed: {exc}", transient=True) from None
        if response.status >= 400:
            # 404: the simulator does not have it (restarted?); retrying won't help.
            raise base.GatewayError(
                f"media {method} failed: HTTP {response.status}",
                transient=response.status >= 500,
            )
        return body

    def mark_read(self, cmd: base.MarkRead) -> None:
        fields = {"chat": cmd.chat, "sender": cmd.sender, "message_ids": list(cmd.message_ids)}
        self._call(lambda: self._request("read", fields), REQUEST_TIMEOUT + 5)

    def request_pair_code(self, phone: str) -> str:
        async def ask() -> str:
            if self._linked:
                raise base.GatewayError("the device is already linked", transient=False)
            answer = await self._request("pair_code", {"phone": phone}, linked=False)
            self._set_state(base.ConnState.PAIRING)
            return answer["code"]

        return self._call(ask, REQUEST_TIMEOUT + 5)

    def logout(self) -> None:
        # The simulator answers, then sends "logged_out": the session ends
        # with LOGGED_OUT through the same path as a logout from the phone.
        self._call(lambda: self._request("logout", {}), REQUEST_TIMEOUT + 5)
