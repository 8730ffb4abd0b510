"""The worker's database threads: async code never touches the ORM, it hands one sync
service call at a time to these threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection

P = ParamSpec("P")
R = TypeVar("R")


class Database:
    """Runs sync ORM work off the event loop. One thread on SQLite (one writer at a
    time anyway); a small pool on PostgreSQL."""

    def __init__(self) -> None:
        self._size = 1 if connection.vendor == "sqlite" else 8
        self._pool = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix="worker-db")

    async def __call__(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._run, fn, args, kwargs
        )

    @staticmethod
    def _run(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        # No close_old_connections() here: with CONN_MAX_AGE=0 it would reconnect on
        # every call. A pool thread keeps its connection; a broken one is replaced below.
        try:
            return fn(*args, **kwargs)
        except (InterfaceError, OperationalError):
            # A dropped connection (database restart): the atomic block rolled back,
            # so one retry on a fresh connection is safe.
            if connection.in_atomic_block:
                raise
            connection.close()
            return fn(*args, **kwargs)

    @staticmethod
    async def once(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """One call on a short-lived thread, its connection closed after."""

        def call() -> R:
            try:
                return fn(*args, **kwargs)
            finally:
                connection.close()

        return await asyncio.to_thread(call)

    def close(self) -> None:
        """Close every pool thread's connection (each thread owns its own)."""
        barrier = threading.Barrier(self._size, timeout=10)

        def close_mine() -> None:
            try:
                barrier.wait()  # one task per thread: none can take a second one
            except threading.BrokenBarrierError:
                pass
            connection.close()

        for _ in range(self._size):
            self._pool.submit(close_mine)
        self._pool.shutdown(wait=True)
