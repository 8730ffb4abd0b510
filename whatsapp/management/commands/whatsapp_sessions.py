"""List the linked numbers and who runs them."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from whatsapp.selectors import session_table


class Command(BaseCommand):
    help = "Show every number: owner, status, phone, which worker holds it, last event."

    def handle(self, *args, **options) -> None:
        rows = session_table()
        if not rows:
            self.stdout.write(
                "No numbers yet. Link one with: manage.py whatsapp_connect NAME --owner USER"
            )
            return
        now = timezone.now()
        header = ("ID", "NAME", "OWNER", "STATUS", "PHONE", "LEASE HOLDER", "LAST EVENT")
        table = [header]
        for s in rows:
            live = s.lease_expires_at and s.lease_expires_at > now
            table.append(
                (
                    str(s.pk),
                    s.name,
                    s.owner.get_username(),
                    s.status,
                    s.phone_number or "-",
                    s.lease_holder if live else "-",
                    timezone.localtime(s.last_event_at).strftime("%Y-%m-%d %H:%M:%S")
                    if s.last_event_at
                    else "-",
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
