"""Create an API token for a user and print it once (for operators, scripts and CI)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from vbcrm import services


class Command(BaseCommand):
    help = (
        "Create a REST API token for USERNAME and print it. It is shown only now: "
        "only its hash is stored. Revoke tokens in the profile page or Django admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="What the token is for (default: cli).")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create USERNAME first if missing (with no password: it can only use tokens).",
        )

    def handle(self, *args, username: str, name: str, create_user: bool, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None and create_user:
            user = User.objects.create_user(username=username, password=None)
        if user is None:
            raise CommandError(f"No user named {username!r} (add --create-user to create one).")
        try:
            created = services.token_create(user=user, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        # The token alone on stdout, so scripts can capture it: TOKEN=$(manage.py ...)
        self.stdout.write(created.plain)
