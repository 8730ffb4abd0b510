"""How a worker runs: its lease holder name, gateway, timings and limits. Read by the
worker and by each number's runner."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


def store_for(session_id: int) -> str:
    """Where the gateway keeps the number's device keys: a schema of WHATSAPP_STORE_DSN, or a
    SQLite file in WHATSAPP_STORE_DIR."""
    if settings.WHATSAPP_STORE_DSN:
        dsn = settings.WHATSAPP_STORE_DSN
        sep = "&" if "?" in dsn else "?"
        return f"{dsn}{sep}search_path=wa_{session_id}"
    settings.WHATSAPP_STORE_DIR.mkdir(parents=True, exist_ok=True)
    return str(settings.WHATSAPP_STORE_DIR / f"number-{session_id}.sqlite3")


@dataclass
class WorkerConfig:
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    gateway: str = "neonize"
    lease_seconds: int = 30
    tick_seconds: float = 2.0
    silence_seconds: float = 90.0
    max_numbers: int = 100
    # Numbers hosted by one child process (1: a process of its own for each).
    numbers_per_process: int = 1
    only_session: int | None = None
    restart_backoff_max: float = 60.0
    media_retries: int = 3

    @classmethod
    def from_settings(cls, **overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "gateway": settings.WHATSAPP_GATEWAY,
            "lease_seconds": settings.WHATSAPP_LEASE_SECONDS,
            "silence_seconds": settings.WHATSAPP_SILENCE_SECONDS,
            "numbers_per_process": settings.WHATSAPP_NUMBERS_PER_PROCESS,
        }
        values.update(overrides)
        return cls(**values)
