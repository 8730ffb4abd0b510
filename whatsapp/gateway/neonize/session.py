"""NeonizeSession: one number on the real WhatsApp network, hosted by the child process.

It follows docs/NEONIZE.md section 6: one ``NewClient`` for the session's life,
a connect loop with backoff on its own thread, Go callbacks that only enqueue, a
dispatcher thread that maps (:mod:`.mapping`) and emits, and a process-wide
reader/writer lock (:mod:`.ffi`) around every FFI call.

The messages it sends are built by :mod:`.outgoing` (replies and message ids:
see there).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from whatsapp.gateway import base
from whatsapp.gateway.neonize import groups, outgoing
from whatsapp.gateway.neonize._lib import (
    JID,
    ConnectedEv,
    DisconnectedEv,
    HistorySyncEv,
    Jid2String,
    Message,
    MessageEv,
    NeonizeError,
    NewClient,
    PairStatusEv,
    ReceiptEv,
    ReceiptType,
)
from whatsapp.gateway.neonize.ffi import (
    FFI_LOCK,
    _gateway_error,
    _Once,
    _opt_float,
    _remaining,
)
from whatsapp.gateway.neonize.mapping import (
    CONNECTION_EVENTS,
    GROUP_EVENTS,
    PHONE_SERVER,
    connection_event,
    map_group_event,
    map_history,
    map_message,
    map_receipt,
    parse_jid,
    strip_device,
    to_datetime,
)
from whatsapp.gateway.neonize.store import StoreUnavailable, device_in_store

logger = logging.getLogger(__name__)

_STOP = object()  # dispatcher sentinel


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
        return self._send(cmd.to, "text", lambda _client: outgoing.build_text(cmd))

    def send_location(self, cmd: base.SendLocation) -> base.SendResult:
        return self._send(cmd.to, "location", lambda _client: outgoing.build_location(cmd))

    def send_contact(self, cmd: base.SendContact) -> base.SendResult:
        return self._send(cmd.to, "contact", lambda _client: outgoing.build_contact(cmd))

    def send_media(self, cmd: base.SendMedia) -> base.SendResult:
        if cmd.kind not in base.MEDIA_KINDS:
            raise base.GatewayError(f"send: {cmd.kind} is not a media kind")
        try:
            data = Path(cmd.path).read_bytes()
        except OSError as exc:
            raise base.GatewayError(f"send: cannot read media file: {exc}") from exc
        return self._send(cmd.to, cmd.kind, lambda client: outgoing.build_media(client, cmd, data))

    def _send(self, to: str, what: str, build: Callable[[NewClient], Message]) -> base.SendResult:
        jid = outgoing.command_jid("send", to)
        with self._ffi("send") as client:
            try:
                message = build(client)
                resp = client.send_message(jid, message)
            except NeonizeError as exc:
                raise _gateway_error("send", exc) from exc
            except Exception as exc:  # PIL / ffmpeg / magic failures on bad input
                raise base.GatewayError(f"send: cannot prepare the message: {exc}") from exc
        logger.info("neonize sent %s %s (account %s)", what, resp.ID, self.config.account)
        return base.SendResult(message_id=resp.ID, timestamp=to_datetime(resp.Timestamp))

    def check_phones(self, cmd: base.CheckPhones) -> tuple[base.PhoneCheck, ...]:
        if not cmd.phones:
            return ()
        with self._ffi("check phones") as client:
            try:
                # whatsmeow wants the international form, "+<digits>".
                responses = client.is_on_whatsapp(*(f"+{p}" for p in cmd.phones))
            except NeonizeError as exc:
                raise _gateway_error("check phones", exc, default=True) from exc
        return outgoing.phone_checks(cmd.phones, responses)

    def get_group_info(self, cmd: base.GetGroupInfo) -> base.GroupInfo:
        jid = outgoing.command_jid("group info", cmd.jid)
        with self._ffi("group info") as client:
            info, picture_url = groups.read(client, jid, cmd)
        return groups.with_picture(info, picture_url, cmd.picture_dest)

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
        return base.DownloadResult(path=cmd.dest, size=base.write_file(cmd.dest, data))

    def mark_read(self, cmd: base.MarkRead) -> None:
        if not cmd.message_ids:
            return
        chat = outgoing.command_jid("mark read", cmd.chat)
        sender = outgoing.command_jid("mark read", cmd.sender) if cmd.sender else chat
        with self._ffi("mark read") as client:
            try:
                client.mark_read(
                    *cmd.message_ids, chat=chat, sender=sender, receipt=ReceiptType.READ
                )
            except NeonizeError as exc:
                raise _gateway_error("mark read", exc) from exc

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
        client._NewClient__onLoginStatus = self._on_login_status
        # Every subscription must exist before connect() (it sends the list).
        client.event(PairStatusEv)(self._on_pair_status)
        client.event(ConnectedEv)(self._on_connected)
        client.event(DisconnectedEv)(self._on_disconnected)
        for event_type in CONNECTION_EVENTS:
            client.event(event_type)(self._on_connection_event)
        for event_type in (MessageEv, ReceiptEv, HistorySyncEv, *GROUP_EVENTS):
            client.event(event_type)(self._on_data)
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

    def _on_connection_event(self, _client: NewClient, ev: Any) -> None:
        """Logged out, replaced, refused, banned or outdated: see mapping.connection_event."""
        self._release_window()
        item = connection_event(ev)
        if item[0] == "finish":
            self._connected = False
        self._queue.put(item)

    def _on_data(self, _client: NewClient, ev: Any) -> None:
        self._release_window()
        kinds = {MessageEv: "message", ReceiptEv: "receipt", HistorySyncEv: "history"}
        self._queue.put((kinds.get(type(ev), "group"), ev))

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
        elif kind == "group":
            changed = map_group_event(item[1])
            if changed is not None:
                self._safe_emit(changed)
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
