"""Calling into neonize's Go core safely: the process-wide FFI lock, and error classification."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from whatsapp.gateway import base

logger = logging.getLogger(__name__)

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


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _opt_float(options: dict[str, str], key: str, default: float) -> float:
    try:
        return float(options.get(key, default))
    except (TypeError, ValueError):
        logger.warning("ignoring bad gateway option %s", key)
        return default


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
