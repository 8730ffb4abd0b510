"""Unlink a number from WhatsApp."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_find


class Command(BaseCommand):
    help = (
        "Log a number out of WhatsApp (the phone's linked devices drop it) and keep its "
        "history. When a worker runs the number, this waits for it to confirm."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name of the number.")
        parser.add_argument("--owner", default=None, help="Owner's username, when names repeat.")
        parser.add_argument("--timeout", type=int, default=30, help="Seconds to wait (30).")

    def handle(self, *args, name: str, owner: str | None, timeout: int, **options) -> None:
        try:
            session = session_find(name=name, owner_username=owner)
        except WhatsAppSession.DoesNotExist:
            raise CommandError(f"No number named {name!r}.") from None
        except WhatsAppSession.MultipleObjectsReturned:
            raise CommandError(f"Several numbers are named {name!r}: add --owner.") from None
        if session.status == WhatsAppSession.Status.LOGGED_OUT:
            self.stdout.write(f"{name!r} is already logged out.")
            return
        session = services.session_request_logout(session=session)
        deadline = time.monotonic() + timeout
        while session.status != WhatsAppSession.Status.LOGGED_OUT:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"The worker {session.lease_holder} did not confirm the logout in {timeout}s; "
                    "it will still carry it out."
                )
            time.sleep(0.3)
            session.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(f"{name!r} is logged out."))
