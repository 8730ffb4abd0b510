"""Link a WhatsApp number from the terminal: QR code (or pairing code) until connected."""

from __future__ import annotations

import asyncio
import sys
import time

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.qr import qr_terminal
from whatsapp.worker import number_running

Status = WhatsAppSession.Status


class Command(BaseCommand):
    help = (
        "Link a WhatsApp number: creates it for OWNER (or reuses the one with this name), "
        "shows the QR code in the terminal, redrawn as it rotates (or prints a pairing code "
        "with --pair-phone), waits until the phone is linked and prints its number. Works "
        "with or without a worker running: if none holds the number, this command runs it "
        "while linking."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name of the number, e.g. 'Vendas'.")
        parser.add_argument("--owner", required=True, help="Username of the owner.")
        parser.add_argument(
            "--pair-phone",
            default="",
            help="Link with a pairing code instead of a QR code: the phone number to link, "
            "with country code (e.g. +5511999990001).",
        )
        parser.add_argument(
            "--timeout", type=int, default=300, help="Give up after this many seconds (300)."
        )

    def handle(self, *args, name: str, owner: str, pair_phone: str, timeout: int, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(
                f"No user named {owner!r}. Create one in Django admin or with "
                "`manage.py createsuperuser`."
            )
        try:
            if pair_phone:  # checked before anything is created
                pair_phone = services.normalise_phone(pair_phone)
            session = WhatsAppSession.objects.filter(owner=user, name=name).first()
            if session is None:
                session = services.session_create(owner=user, name=name)
                self.stdout.write(f"Created number {session.name!r} (id {session.pk}).")
            elif session.status == Status.CONNECTED:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{session.name!r} is already connected as +{session.phone_number}."
                    )
                )
                return
            session = services.session_request_link(session=session, pair_phone=pair_phone)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        phone = asyncio.run(self._link(session.pk, timeout))
        self.stdout.write(self.style.SUCCESS(f"Connected: {name!r} is linked to +{phone}."))

    async def _link(self, session_id: int, timeout: int) -> str:
        async with number_running(session_id) as runs_here:
            if not runs_here:
                self.stdout.write("A worker runs this number; following it.")
            phone = await self._follow(session_id, timeout)
        if runs_here:
            self.stdout.write(
                "Linked. Keep a worker running (`make run` or `manage.py whatsapp_worker`) "
                "so the number stays connected."
            )
        return phone

    async def _follow(self, session_id: int, timeout: int) -> str:
        deadline = time.monotonic() + timeout
        shown_qr = shown_code = shown_failure = ""
        tty = sys.stdout.isatty()
        while time.monotonic() < deadline:
            row = await _load(session_id)
            if row.status == Status.CONNECTED and row.phone_number:
                return row.phone_number
            if row.status == Status.LOGGED_OUT:
                raise CommandError(row.status_detail or "The number was logged out.")
            if row.status == Status.DISCONNECTED and not row.jid and row.status_detail:
                raise CommandError(f"Not linked: {row.status_detail}")
            failure = _attempt_failed(row)
            if failure and failure != shown_failure:
                # Each failed try to reach WhatsApp, with its reason (offline, blocked, DNS):
                # the client tries again by itself, with a growing pause.
                self.stderr.write(f"Could not reach WhatsApp's servers: {failure}. Retrying...")
            shown_failure = failure
            if row.pair_code and row.pair_code != shown_code:
                shown_code = row.pair_code
                self.stdout.write(
                    f"\nPairing code: {row.pair_code}\nOn the phone: WhatsApp > Linked devices > "
                    "Link a device > Link with phone number instead, then type the code.\n"
                )
            elif row.qr_code and row.qr_code != shown_qr and not row.pair_phone:
                shown_qr = row.qr_code
                if tty:
                    self.stdout.write("\033[2J\033[H", ending="")
                self.stdout.write(qr_terminal(row.qr_code))
                self.stdout.write(
                    "Scan with the phone: WhatsApp > Linked devices > Link a device. "
                    "The code changes every few seconds; this one is redrawn.\n"
                )
            await asyncio.sleep(0.3)
        raise CommandError(f"Not linked after {timeout} seconds. Run the command again.")


def _attempt_failed(row: WhatsAppSession) -> str:
    """The reason the client's latest try to reach WhatsApp failed, while linking."""
    waiting = row.status in (Status.NEW, Status.WAITING_QR, Status.PAIRING)
    if waiting and not row.jid and not row.qr_code and not row.pair_code:
        return row.status_detail
    return ""


@sync_to_async
def _load(session_id: int) -> WhatsAppSession:
    try:
        return WhatsAppSession.objects.get(pk=session_id)
    except WhatsAppSession.DoesNotExist:
        raise CommandError("The number was deleted while linking.") from None
