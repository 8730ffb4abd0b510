"""Import numbers, contacts, conversations, messages and settings from the previous system."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.services.legacy_import import (
    DEFAULT_BATCH_SIZE,
    SourceError,
    import_owner,
    import_summary,
    legacy_import,
)


class Command(BaseCommand):
    help = (
        "Import from the previous system's database (Supabase/PostgreSQL): its numbers"
        " (logged out, to link again), contacts, conversations, messages and settings."
        " Safe to run again: what was imported before is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url",
            required=True,
            help="the source database, postgres://user:password@host:5432/name (read only)",
        )
        parser.add_argument(
            "--owner",
            metavar="EMAIL",
            help="who owns the imported numbers (default: the first superuser)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="read and count everything, write nothing"
        )
        parser.add_argument(
            "--download-media",
            action="store_true",
            help="copy media files into the media store (else their links are kept)",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            owner = import_owner(options["owner"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Importing for {owner.get_username()}…")
        try:
            report = legacy_import(
                database_url=options["database_url"],
                owner=owner,
                dry_run=options["dry_run"],
                download_media=options["download_media"],
                batch_size=options["batch_size"],
                progress=self._progress,
            )
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self.stderr.write("")  # end the progress line
        for line in import_summary(report):
            self.stdout.write(line)

    _shown: tuple[str, int] = ("", -1)

    def _progress(self, table: str, done: int, total: int) -> None:
        """One line per batch, redrawn in place on a terminal; in a log, every tenth."""
        width = 30
        filled = width * done // total if total else width
        percent = 100 * done // total if total else 100
        live = sys.stderr.isatty()
        if not live and self._shown[0] == table and percent // 10 == self._shown[1] // 10:
            return
        if live and self._shown[0] not in ("", table):
            self.stderr.write("")  # keep the finished table's line
        self._shown = (table, percent)
        bar = "#" * filled + "-" * (width - filled)
        self.stderr.write(
            f"{table:<24} [{bar}] {done}/{total} ({percent}%)", ending="\r" if live else "\n"
        )
