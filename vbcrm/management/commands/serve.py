"""Serve VB CRM with daphne; in the embedded mode the WhatsApp worker shares its event loop."""

from __future__ import annotations

import asyncio
import gc
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from whatsapp import preflight

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Serve the web app (HTTP and WebSockets) with daphne. With --worker (the default "
        "when no DATABASE_URL is set) the WhatsApp worker runs in the same process and "
        "event loop, so one command runs everything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1)."
        )
        parser.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--worker",
            dest="worker",
            action="store_true",
            default=None,
            help="Run the WhatsApp worker in this process.",
        )
        group.add_argument(
            "--no-worker",
            dest="worker",
            action="store_false",
            help="Web only (run `manage.py whatsapp_worker` separately).",
        )
        preflight.add_ignore_argument(parser)

    def handle(
        self,
        *args,
        host: str,
        port: int,
        worker: bool | None,
        ignore_store_check: bool,
        **options,
    ) -> None:
        # Imported here, not at the top: daphne.server installs Twisted's asyncio reactor on
        # import, and the ASGI application builds the URL routes; neither may happen when
        # manage.py merely lists or loads its commands.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from realtime.warm import warm_up
        from vbcrm.asgi import application

        if worker is None:
            worker = settings.EMBEDDED or settings.WHATSAPP_EMBEDDED_WORKER
        if worker:
            refusal = preflight.refusal(
                gateway=settings.WHATSAPP_GATEWAY, ignore=ignore_store_check
            )
            if refusal:
                raise CommandError(refusal)
        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            ready_callable=lambda: self.stdout.write(f"VB CRM is serving on http://{host}:{port}/"),
        )
        if worker:
            # Only the embedded mode needs the worker (and, through it, the gateways).
            from whatsapp.worker import embed_in_reactor

            embed_in_reactor()
        # Templates, translations and the frame path ready before the first live event.
        logger.info("warmed up in %.0f ms", warm_up() * 1000)
        server.run()
        _settle_event_loop()


def _settle_event_loop() -> None:
    """End what daphne left running on its event loop (the socket hub's listeners, ...)
    while the interpreter is whole. Left pending, those tasks are destroyed during the
    interpreter's own shutdown, after the modules they need are gone, and the process
    could die of a segmentation fault at exit instead of returning 0."""
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    if loop.is_closed() or loop.is_running():
        return
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    try:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:
        logger.warning("tasks left at shutdown did not end cleanly", exc_info=True)
    finally:
        loop.close()
    gc.collect()
