"""Several numbers in one child process (``WHATSAPP_NUMBERS_PER_PROCESS`` above 1).

One child per number (:mod:`whatsapp.gateway.process`) isolates every number from the
others, but each child carries its own interpreter, WhatsApp library and Go runtime. A
*shard* is one child hosting up to K numbers' sessions side by side: the fixed cost is
paid once per K numbers. neonize's Go maps are guarded by the process-wide reader/writer
lock of :mod:`whatsapp.gateway.neonize.ffi`, which docs/NEONIZE.md measured stopping
the races between clients of one process.

The trade: a Go abort, a leak or a wedged library call takes down the whole shard, so
its K numbers restart together (each number's runner starts it again, in a new shard);
the other shards are not touched.

Each number keeps its own :class:`~whatsapp.gateway.process.GatewayChild` interface
(:class:`ShardMember`), so the runner works the same either way. On the pipe, every item
carries the number's account:

  parent -> child: ("open", account, SessionConfig) | ("close", account)
                   | ("cmd", account, request_id, Command) | ("done", account, seq) | ("stop",)
  child -> parent: ("event", account, seq, Event) | ("result", account, request_id, ok, value)
                   | ("closed", account)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from whatsapp.gateway.base import (
    Alive,
    Command,
    Event,
    GatewayError,
    InboundMessage,
    Session,
    SessionConfig,
)
from whatsapp.gateway.process import (
    ALIVE_INTERVAL,
    GatewayChild,
    _load,
    hand_to_loop,
    parent_items,
)

logger = logging.getLogger(__name__)

# How long the child gives one number's session to stop when it is closed.
CLOSE_SECONDS = 10.0
_shard_numbers = itertools.count(1)


class _Hosted:
    """One number's session inside a shard child, with its own event numbering."""

    def __init__(self, account: str, send: Callable[[tuple], None]) -> None:
        self.account = account
        self._send = send
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.session: Session | None = None
        self.closing = False

    def emit(self, event: Event) -> int:
        with self._lock:  # numbers must reach the pipe in order
            seq = next(self._counter)
            self._send(("event", self.account, seq, event))
        return seq


def shard_main(conn: Connection, session_path: str, name: str) -> None:
    """Entry point of a shard's child process."""
    logging.basicConfig(
        level=os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s %(levelname)s {name} %(name)s %(message)s",
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (see process.py)
    send_lock = threading.Lock()
    closed = threading.Event()
    hosted: dict[str, _Hosted] = {}
    hosted_lock = threading.Lock()
    session_class = _load(session_path)

    def send(item: tuple) -> None:
        if closed.is_set():
            return
        try:
            with send_lock:
                conn.send(item)
        except (BrokenPipeError, EOFError, OSError):
            closed.set()

    # Commands and closes of all the shard's numbers: a number being closed (up to
    # CLOSE_SECONDS) must not hold up its neighbours' sends.
    pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cmd")

    def open_one(account: str, config: SessionConfig) -> None:
        one = _Hosted(account, send)
        with hosted_lock:
            hosted[account] = one
        try:
            session = session_class(config, one.emit)
            session.start()
        except Exception:
            logger.exception("could not start account %s", account)
            with hosted_lock:
                hosted.pop(account, None)
            send(("closed", account))
            return
        one.session = session

    def close_one(account: str) -> None:
        with hosted_lock:
            one = hosted.get(account)
        if one is not None and one.session is not None:
            one.closing = True
            try:
                one.session.stop(timeout=CLOSE_SECONDS)
            except Exception:
                logger.exception("stopping account %s failed", account)
        with hosted_lock:
            hosted.pop(account, None)
        send(("closed", account))

    def run(account: str, request_id: int, command: Command) -> None:
        with hosted_lock:
            one = hosted.get(account)
        if one is None or one.session is None:
            error = GatewayError("the number's client is not running", transient=True)
            send(("result", account, request_id, False, error))
            return
        try:
            value = one.session.handle(command)
            send(("result", account, request_id, True, value))
        except GatewayError as exc:
            send(("result", account, request_id, False, exc))
        except Exception as exc:  # a bug or library error: report it, keep the shard up
            logger.exception("command %s failed account=%s", type(command).__name__, account)
            error = GatewayError(f"{type(exc).__name__}: {exc}")
            send(("result", account, request_id, False, error))

    def alive_loop() -> None:
        while not closed.wait(ALIVE_INTERVAL):
            with hosted_lock:
                running = [h for h in hosted.values() if h.session is not None and not h.closing]
            for one in running:
                assert one.session is not None
                try:
                    connected = one.session.is_connected()
                except Exception:
                    connected = False
                one.emit(Alive(connected=connected))

    threading.Thread(target=alive_loop, name="alive", daemon=True).start()
    try:
        for item in parent_items(conn):
            kind = item[0]
            if kind == "open":
                open_one(item[1], item[2])
            elif kind == "close":
                pool.submit(close_one, item[1])
            elif kind == "cmd":
                pool.submit(run, item[1], item[2], item[3])
            elif kind == "done":
                with hosted_lock:
                    one = hosted.get(item[1])
                if one is not None and one.session is not None:
                    one.session.confirmed(item[2])
    finally:
        with hosted_lock:
            sessions = [h.session for h in hosted.values() if h.session is not None]
        stoppers = [
            threading.Thread(target=s.stop, kwargs={"timeout": CLOSE_SECONDS}, daemon=True)
            for s in sessions
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(CLOSE_SECONDS + 1)
        closed.set()
        pool.shutdown(wait=False, cancel_futures=True)
        conn.close()
    os._exit(0)  # as in process.child_main: a wedged library's threads must not linger


class Shard:
    """The worker's handle on one shard child process and the numbers it hosts."""

    def __init__(self, session_path: str, on_gone: Callable[[Shard], None]) -> None:
        self.session_path = session_path
        self.name = f"whatsapp-shard-{next(_shard_numbers)}"
        self._on_gone = on_gone
        self.members: dict[str, ShardMember] = {}
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Task | None = None
        self.gone = False  # the child exited (or never started)
        self.closing = False  # asked to stop: takes no new numbers

    def has_room(self, per_process: int) -> bool:
        return not (self.gone or self.closing) and len(self.members) < per_process

    async def ensure_started(self) -> None:
        """Start the child once; every member waits for the same start."""
        if self._started is None:
            self._started = asyncio.create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=shard_main,
            args=(child_conn, self.session_path, self.name),
            name=self.name,
            daemon=True,
        )
        try:
            await asyncio.to_thread(self.process.start)
        except Exception:
            self._gone()
            raise
        child_conn.close()
        self._conn = parent_conn
        threading.Thread(target=self._reader, name=f"pipe-{self.name}", daemon=True).start()

    def send(self, item: tuple) -> None:
        if self._conn is None or self.gone:
            raise BrokenPipeError("the shard is not running")
        with self._send_lock:
            self._conn.send(item)

    def _reader(self) -> None:
        assert self._conn is not None and self._loop is not None
        while True:
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an unpicklable item: skip it, keep reading
                logger.exception("bad item from %s", self.name)
                continue
            if not hand_to_loop(self._loop, self._route, item):
                return
        hand_to_loop(self._loop, self._gone)

    def _route(self, item: tuple) -> None:
        member = self.members.get(item[1])
        if member is None:
            return
        kind = item[0]
        if kind == "event":
            member._events.put(("event", item[2], item[3]))
        elif kind == "result":
            member._resolve(("result", item[2], item[3], item[4]))
        elif kind == "closed":
            self.detach(member)

    def detach(self, member: ShardMember) -> None:
        """The number left the shard (closed, or the shard died); an empty shard stops."""
        if self.members.get(member.config.account) is member:
            del self.members[member.config.account]
        member._events.put(("eof",))
        if not self.members and not self.gone:
            self.close()

    def close(self) -> None:
        self.closing = True
        try:
            self.send(("stop",))
        except (BrokenPipeError, OSError):
            pass

    def _gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        for member in list(self.members.values()):
            self.detach(member)
        self._on_gone(self)
        if self.process is not None:
            threading.Thread(target=self.process.join, args=(5,), daemon=True).start()

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            logger.warning("killing %s and its %d numbers", self.name, len(self.members))
            self.process.kill()


class ShardMember(GatewayChild):
    """One number's handle on its shard: the same interface as a child of its own."""

    def __init__(
        self,
        config: SessionConfig,
        session_path: str,
        on_event: Callable[[Event], Awaitable[None] | None],
        on_messages: Callable[[list[InboundMessage]], Awaitable[None]] | None,
        shard: Shard,
    ) -> None:
        super().__init__(config, session_path, on_event, on_messages)
        self.shard = shard
        shard.members[config.account] = self

    @property
    def pid(self) -> int | None:
        return self.shard.process.pid if self.shard.process else None

    @property
    def exitcode(self) -> int | None:
        return self.shard.process.exitcode if self.shard.process else None

    def is_alive(self) -> bool:
        process = self.shard.process
        return not self.shard.gone and process is not None and process.is_alive()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pump_task = asyncio.create_task(self._pump())
        try:
            await self.shard.ensure_started()
            self.shard.send(("open", self.config.account, self.config))
        except Exception:
            self.shard.detach(self)
            raise

    def _send(self, item: tuple) -> None:
        if item[0] == "stop":
            self.shard.send(("close", self.config.account))
        else:
            self.shard.send((item[0], self.config.account, *item[1:]))

    def _join(self) -> None:
        """The shard's process is joined by the shard, not by each of its numbers."""

    async def stop(self, timeout: float = 15.0) -> None:
        """Close this number's session in the shard; kill the shard if it does not.

        The session's own stop is bounded (CLOSE_SECONDS): it is given that long at least,
        as killing the shard would restart its neighbours too."""
        if self._loop is None:
            return
        timeout = max(timeout, CLOSE_SECONDS + 5)
        if not self._exited.is_set():
            try:
                self._send(("stop",))
            except (BrokenPipeError, OSError):
                self.shard.detach(self)
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            logger.warning("account=%s did not stop; killing its shard", self.config.account)
            self.kill()
            await self._exited.wait()
        if self._pump_task is not None:
            await self._pump_task

    def kill(self) -> None:
        self.shard.kill()


class ShardPool:
    """The worker's shards: each number joins one with room, or starts a new one."""

    def __init__(self, session_path: str, per_process: int) -> None:
        self.session_path = session_path
        self.per_process = per_process
        self.shards: list[Shard] = []

    def member(
        self,
        config: SessionConfig,
        on_event: Callable[[Event], Awaitable[None] | None],
        on_messages: Callable[[list[InboundMessage]], Awaitable[None]] | None = None,
    ) -> ShardMember:
        shard = next((s for s in self.shards if s.has_room(self.per_process)), None)
        if shard is None:
            shard = Shard(self.session_path, self._forget)
            self.shards.append(shard)
        return ShardMember(config, self.session_path, on_event, on_messages, shard)

    def _forget(self, shard: Shard) -> None:
        if shard in self.shards:
            self.shards.remove(shard)
