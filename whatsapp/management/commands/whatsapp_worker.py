"""Run the WhatsApp worker on its own (scaled deployments: PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from whatsapp import preflight
from whatsapp.worker import Worker, WorkerConfig


class Command(BaseCommand):
    help = (
        "Hold the WhatsApp connections of linked numbers: claim numbers by lease, run one "
        "client process each, store what arrives and send the outbox. Run as many as you "
        "like beside the web processes; they share the numbers. Stop with SIGTERM or Ctrl-C "
        "(leases are released so another worker takes over at once)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-numbers", type=int, default=100, help="Most numbers this worker runs (100)."
        )
        preflight.add_ignore_argument(parser)

    def handle(self, *args, max_numbers: int, ignore_store_check: bool, **options) -> None:
        backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        if backend.endswith("InMemoryChannelLayer"):
            raise CommandError(
                "The channel layer is in-memory, so this worker could not reach the web "
                "processes (live updates and send wake-ups would be lost). Set REDIS_URL "
                "(e.g. redis://127.0.0.1:6379/0) and DATABASE_URL for a scaled deployment, "
                "or use `make run` / `manage.py serve`, which runs the worker embedded."
            )
        if max_numbers < 1:
            raise CommandError("--max-numbers must be at least 1.")
        refusal = preflight.refusal(gateway=settings.WHATSAPP_GATEWAY, ignore=ignore_store_check)
        if refusal:
            raise CommandError(refusal)
        worker = Worker(WorkerConfig.from_settings(max_numbers=max_numbers))
        self.stdout.write(
            f"worker {worker.config.holder} running (gateway={worker.config.gateway})"
        )
        asyncio.run(self._run(worker))
        self.stdout.write("worker stopped")

    async def _run(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        await worker.run()
