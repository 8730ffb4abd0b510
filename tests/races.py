"""Calls raced against each other: each on its own thread and database connection,
released together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connection


def at_once(call: Callable[[int], Any], n: int) -> tuple[list[Any], list[BaseException]]:
    """``call(0)`` … ``call(n - 1)`` started together on ``n`` threads; their results
    (in no particular order) and the exceptions they raised."""
    start = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results.append(call(i))
        except BaseException as exc:  # noqa: BLE001 - the caller asserts on them
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors
