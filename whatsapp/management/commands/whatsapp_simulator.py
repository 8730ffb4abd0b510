"""``manage.py whatsapp_simulator``: run the fake WhatsApp network in the foreground."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from whatsapp.simulator.server import DESCRIPTION, SimulatorServer, add_arguments, serve

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = DESCRIPTION
    # It touches neither the database nor the models: no reason to let a
    # half-configured project stop a demo network from starting.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            server = SimulatorServer(
                options["host"],
                options["port"],
                qr_interval=options["qr_interval"],
                qr_rotations=options["qr_rotations"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        def ready(url: str) -> None:
            self.stdout.write(self.style.SUCCESS(f"WhatsApp simulator on {url} (Ctrl-C to stop)"))

        try:
            asyncio.run(serve(server, on_ready=ready))
        except OSError as exc:  # typically: the port is taken
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from None
        self.stdout.write("WhatsApp simulator stopped.")
