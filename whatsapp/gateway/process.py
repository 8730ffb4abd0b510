"""One child process per linked number, and the pipe between it and the worker.

The child (``child_main``) hosts one :class:`~whatsapp.gateway.base.Session`,
imported by dotted path, so the parent never imports the WhatsApp library. The
child is started with the ``spawn`` method: a forked copy of a process that
already loaded neonize's Go runtime hangs, and a Go abort must only ever take
down its own number.

Pipe protocol (pickled tuples):
  parent -> child: ("cmd", request_id, Command) | ("done", seq) | ("stop",)
  child -> parent: ("event", seq, Event) | ("result", request_id, ok, value | GatewayError)
Events are numbered; the parent answers ("done", seq) once it has stored event
``seq`` (and so every event before it), and the session may acknowledge it to the
network only then. Inbound messages that queue up while the parent is busy are handed
over together (group commit) and confirmed with the last one's number once all are
stored; a lone message is handed over at once, alone.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import overload

from whatsapp.gateway.base import (
    Alive,
    CheckPhones,
    Command,
    DownloadMedia,
    DownloadResult,
    Event,
    GatewayError,
    GetGroupInfo,
    GroupInfo,
    InboundMessage,
    Logout,
    MarkRead,
    PhoneCheck,
    RequestPairCode,
    SendCommand,
    SendResult,
    Session,
    SessionConfig,
)

logger = logging.getLogger(__name__)

ALIVE_INTERVAL = 5.0
# Most inbound messages stored in one transaction when they queue up.
BATCH_MAX = 200
GATEWAYS = {
    "neonize": "whatsapp.gateway.neonize:NeonizeSession",
    "simulator": "whatsapp.gateway.simulator:SimulatorSession",
}


def _load(path: str) -> type[Session]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def hand_to_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: object) -> bool:
    """``loop.call_soon_threadsafe`` from a pipe's reader thread; False once the loop
    is closed (the parent shut down before its child's pipe ended: nobody is left to
    hand anything to)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # "Event loop is closed"
        return False
    return True


def child_main(conn: Connection, session_path: str, config: SessionConfig) -> None:
    """Entry point of a number's child process."""
    logging.basicConfig(
        level=os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s %(levelname)s child[{config.account}] %(name)s %(message)s",
    )
    # The parent decides when the child stops; Ctrl-C in a terminal reaches the
    # whole process group, and the parent then stops each child in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()
    closed = threading.Event()

    def send(item: tuple) -> None:
        if closed.is_set():
            return
        try:
            with send_lock:
                conn.send(item)
        except (BrokenPipeError, EOFError, OSError):
            closed.set()

    counter = itertools.count(1)
    counter_lock = threading.Lock()

    def emit(event: Event) -> int:
        with counter_lock:  # numbers must reach the pipe in order
            seq = next(counter)
            send(("event", seq, event))
        return seq

    session = _load(session_path)(config, emit)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cmd")

    def run(request_id: int, command: Command) -> None:
        try:
            value = session.handle(command)
            send(("result", request_id, True, value))
        except GatewayError as exc:
            send(("result", request_id, False, exc))
        except Exception as exc:  # a bug or library error: report it, keep the child up
            logger.exception("command %s failed", type(command).__name__)
            send(("result", request_id, False, GatewayError(f"{type(exc).__name__}: {exc}")))

    def alive_loop() -> None:
        while not closed.wait(ALIVE_INTERVAL):
            try:
                connected = session.is_connected()
            except Exception:
                connected = False
            emit(Alive(connected=connected))

    session.start()
    threading.Thread(target=alive_loop, name="alive", daemon=True).start()
    try:
        for item in parent_items(conn):
            if item[0] == "cmd":
                pool.submit(run, item[1], item[2])
            elif item[0] == "done":
                session.confirmed(item[1])
    finally:
        try:
            session.stop(timeout=10.0)
        finally:
            closed.set()
            pool.shutdown(wait=False, cancel_futures=True)
            conn.close()
    # Non-daemon threads of a wedged library must not keep a dead number's process alive.
    os._exit(0)


def parent_items(conn: Connection) -> Iterator[tuple]:
    """In a child: what the worker sends, until it says stop, hangs up, or dies without a
    word (the child is then orphaned, and stops too)."""
    parent = os.getppid()
    while True:
        if not conn.poll(1.0):
            if os.getppid() != parent:
                return
            continue
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item[0] == "stop":
            return
        yield item


class _Inbox:
    """The child's items in arrival order; unlike asyncio.Queue it lets the pump take
    every inbound message already waiting behind the one it got."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple] = collections.deque()
        self._ready = asyncio.Event()

    def put(self, item: tuple) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> tuple:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def take_messages(self, limit: int) -> list[tuple]:
        """The inbound-message events at the head of the queue, at most ``limit``."""
        taken: list[tuple] = []
        while self._items and len(taken) < limit:
            item = self._items[0]
            if item[0] != "event" or not isinstance(item[2], InboundMessage):
                break
            taken.append(self._items.popleft())
        return taken


class ChildGone(GatewayError):
    def __init__(self, message: str = "the number's client process is not running") -> None:
        super().__init__(message, transient=True)


class GatewayChild:
    """The worker's handle on one number's child process (asyncio side)."""

    def __init__(
        self,
        config: SessionConfig,
        session_path: str,
        on_event: Callable[[Event], Awaitable[None] | None],
        on_messages: Callable[[list[InboundMessage]], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.session_path = session_path
        self.on_event = on_event
        # Stores several inbound messages at once; without it, one by one.
        self.on_messages = on_messages
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events = _Inbox()
        self._exited = asyncio.Event()
        self._pump_task: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode if self.process else None

    def is_alive(self) -> bool:
        return bool(self.process and self.process.is_alive())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=child_main,
            args=(child_conn, self.session_path, self.config),
            name=f"whatsapp-{self.config.account}",
            daemon=True,
        )
        # Spawning imports a fresh interpreter: keep it off the event loop.
        await asyncio.to_thread(self.process.start)
        child_conn.close()
        self._conn = parent_conn
        threading.Thread(
            target=self._reader, name=f"pipe-{self.config.account}", daemon=True
        ).start()
        self._pump_task = asyncio.create_task(self._pump())

    def _reader(self) -> None:
        """Blocking reads on a thread; everything is handed to the event loop in order."""
        assert self._conn is not None and self._loop is not None
        while True:
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an unpicklable item: skip it, keep reading
                logger.exception("bad item from child %s", self.config.account)
                continue
            # A result goes straight to its waiting future, not behind queued events: an
            # event handler may itself be waiting for a command's result.
            handled = self._resolve if item[0] == "result" else self._events.put
            if not hand_to_loop(self._loop, handled, item):
                return
        hand_to_loop(self._loop, self._events.put, ("eof",))

    def _resolve(self, item: tuple) -> None:
        _, request_id, ok, value = item
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _pump(self) -> None:
        while True:
            item = await self._events.get()
            kind = item[0]
            if kind == "event":
                _, seq, event = item
                more: list[tuple] = []
                if self.on_messages is not None and isinstance(event, InboundMessage):
                    more = self._events.take_messages(BATCH_MAX - 1)
                try:
                    if more and self.on_messages is not None:
                        await self.on_messages([event, *(m[2] for m in more)])
                        seq = more[-1][1]
                    else:
                        result = self.on_event(event)
                        if asyncio.iscoroutine(result):
                            await result
                except Exception:
                    # Not confirmed: the network redelivers it to the next child.
                    logger.exception("event handler failed account=%s", self.config.account)
                    continue
                self._confirm(seq)
            elif kind == "eof":
                await asyncio.to_thread(self._join)
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ChildGone())
                self._pending.clear()
                self._exited.set()
                return

    def _send(self, item: tuple) -> None:
        """One item down the pipe; raises BrokenPipeError or OSError when it is gone."""
        if self._conn is None:
            raise BrokenPipeError("no pipe")
        self._conn.send(item)

    def _confirm(self, seq: int) -> None:
        if self._exited.is_set():
            return
        try:
            self._send(("done", seq))
        except (BrokenPipeError, OSError):
            pass

    def _join(self) -> None:
        if self.process is not None:
            self.process.join(timeout=5)

    async def wait_exited(self) -> None:
        await self._exited.wait()

    # What each command answers (``Session.handle`` dispatches them).
    @overload
    async def request(self, command: SendCommand, timeout: float = ...) -> SendResult: ...
    @overload
    async def request(
        self, command: CheckPhones, timeout: float = ...
    ) -> tuple[PhoneCheck, ...]: ...
    @overload
    async def request(self, command: GetGroupInfo, timeout: float = ...) -> GroupInfo: ...
    @overload
    async def request(self, command: DownloadMedia, timeout: float = ...) -> DownloadResult: ...
    @overload
    async def request(self, command: RequestPairCode, timeout: float = ...) -> str: ...
    @overload
    async def request(self, command: MarkRead | Logout, timeout: float = ...) -> None: ...

    async def request(self, command: Command, timeout: float = 120.0) -> object:
        """Run a command in the child; raises GatewayError (ChildGone when it died)."""
        if self._loop is None or self._exited.is_set():
            raise ChildGone()
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._send(("cmd", request_id, command))
        except (BrokenPipeError, OSError):
            self._pending.pop(request_id, None)
            raise ChildGone() from None
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise GatewayError(
                f"{type(command).__name__} timed out after {timeout:.0f}s", transient=True
            ) from None

    async def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to stop cleanly; kill it if it does not."""
        if self.process is None:
            return
        if self._conn is not None and not self._exited.is_set():
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            logger.warning("child of account=%s did not stop; killing it", self.config.account)
            self.kill()
            await self._exited.wait()
        if self._pump_task is not None:
            await self._pump_task

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
