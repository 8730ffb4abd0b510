"""A live check of a linked number against real WhatsApp (for operators; not run in CI)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from conversations import services as conv_services
from conversations.models import Message
from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_find
from whatsapp.simulator.samples import png
from whatsapp.worker import number_running


class Command(BaseCommand):
    help = (
        "Smoke-test a linked number on real WhatsApp: send a text and an image to --to, "
        "wait for their delivery receipts, wait for a reply from that phone, send a read "
        "receipt, and optionally log the number out. Prints PASS/FAIL per step; exits 1 on "
        "any failure. Link the number first with whatsapp_connect."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name of the linked number.")
        parser.add_argument("--to", required=True, help="Phone to talk to, with country code.")
        parser.add_argument("--owner", default=None, help="Owner's username, when names repeat.")
        parser.add_argument("--image", default=None, help="Image to send (default: a small PNG).")
        parser.add_argument("--wait", type=int, default=120, help="Seconds per step (120).")
        parser.add_argument("--logout", action="store_true", help="Log the number out at the end.")

    def handle(self, *args, name, to, owner, image, wait, logout, **options) -> None:
        try:
            session = session_find(name=name, owner_username=owner)
        except WhatsAppSession.DoesNotExist:
            raise CommandError(f"No number named {name!r}.") from None
        except WhatsAppSession.MultipleObjectsReturned:
            raise CommandError(f"Several numbers are named {name!r}: add --owner.") from None
        if not session.jid:
            raise CommandError(f"{name!r} is not linked: run whatsapp_connect first.")
        try:
            conversation = conv_services.conversation_open(session=session, phone=to)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        data = Path(image).read_bytes() if image else png(64, 64)
        self.phone = conversation.contact.phone
        self.failures = 0
        asyncio.run(self._run(session, conversation, data, wait, logout))
        if self.failures:
            raise CommandError(f"{self.failures} step(s) failed.")
        self.stdout.write(self.style.SUCCESS("All steps passed."))

    def _step(self, ok: bool, text: str) -> None:
        if ok:
            self.stdout.write(self.style.SUCCESS(f"PASS  {text}"))
        else:
            self.failures += 1
            self.stdout.write(self.style.ERROR(f"FAIL  {text}"))

    async def _until(self, check, wait: int):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            value = await sync_to_async(check)()
            if value:
                return value
            await asyncio.sleep(0.5)
        return None

    async def _run(self, session, conversation, image: bytes, wait: int, logout: bool) -> None:
        async with number_running(session.pk):
            connected = await self._until(
                lambda: WhatsAppSession.objects.get(pk=session.pk).status == "connected", wait
            )
            self._step(bool(connected), "number connected")
            if not connected:
                return
            user = session.owner
            text = await sync_to_async(conv_services.message_queue_outbound)(
                user=user, conversation=conversation, text="VB CRM smoke test: text"
            )
            photo = await sync_to_async(conv_services.message_queue_outbound)(
                user=user,
                conversation=conversation,
                text="VB CRM smoke test: image",
                upload=SimpleUploadedFile("smoke.png", image, content_type="image/png"),
            )
            ids = [text.pk, photo.pk]

            def statuses() -> set[str]:
                return set(Message.objects.filter(pk__in=ids).values_list("status", flat=True))

            sent = await self._until(lambda: statuses() <= {"sent", "delivered", "read"}, wait)
            now = await sync_to_async(statuses)()
            self._step(bool(sent), f"text and image sent ({', '.join(sorted(now))})")
            delivered = await self._until(lambda: statuses() <= {"delivered", "read"}, wait)
            self._step(bool(delivered), "delivery receipts received")
            self.stdout.write(f"Now reply from +{self.phone} (waiting {wait}s)...")
            reply = await self._until(
                lambda: Message.objects.filter(
                    conversation=conversation, direction="CLIENTE", pk__gt=photo.pk
                ).first(),
                wait,
            )
            self._step(reply is not None, "reply received")
            if reply is not None:
                await sync_to_async(conv_services.conversation_mark_read)(
                    conversation=conversation, user=user
                )
                receipt = await self._until(
                    lambda: not Message.objects.filter(pk=reply.pk, receipt_pending=True).exists(),
                    wait,
                )
                self._step(bool(receipt), "read receipt sent (blue ticks on the phone)")
            if logout:
                await sync_to_async(services.session_request_logout)(session=session)
                out = await self._until(
                    lambda: WhatsAppSession.objects.get(pk=session.pk).status == "logged_out", wait
                )
                self._step(bool(out), "logged out")
