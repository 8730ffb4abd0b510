"""The FFI lock and how neonize errors are classified. Nothing here needs Django or Go."""

from __future__ import annotations

import threading
import time

import pytest

from whatsapp.gateway.neonize.ffi import RWLock, is_transient


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ("failed to send: websocket not connected", True),
        ("client is nil", True),
        ("context deadline exceeded", True),
        ("download failed with status code 404", False),
        ("invalid JID", False),
        ("server returned error 479", False),
        ("upload failed with status code 503", True),
        ("info query returned status 429: rate-overlimit", True),
        ("failed to get devices of 5511404040404@s.whatsapp.net: timed out", True),
    ],
)
def test_error_classification(text: str, transient: bool) -> None:
    assert is_transient(text) is transient


def test_rwlock_writer_excludes_readers_and_is_not_starved() -> None:
    lock = RWLock()
    assert lock.acquire_read(timeout=0)
    assert lock.acquire_read(timeout=0)  # readers share
    assert not lock.acquire_write(timeout=0.05)  # readers hold it
    got_write = threading.Event()

    def writer() -> None:
        lock.acquire_write()
        got_write.set()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    assert not lock.acquire_read(timeout=0.05)  # a waiting writer blocks new readers
    lock.release_read()
    lock.release_read()
    assert got_write.wait(2)
    assert not lock.acquire_read(timeout=0.05)
    lock.release_write()
    assert lock.acquire_read(timeout=0)
    lock.release_read()
    thread.join()
