"""Create the first admin user when there is none, and print its password once."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser named 'admin' with a random password if no superuser exists. "
        "The password is printed once and stored only as a hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Username (default: admin).")
        parser.add_argument(
            "--login-url",
            default="http://127.0.0.1:8000/login/",
            help="Where to log in, for the printed hint.",
        )

    def handle(self, *args, username: str, login_url: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin user already exists; nothing to do.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        bar = "=" * 60
        self.stdout.write(
            self.style.SUCCESS(
                f"{bar}\nAdmin user created. Log in at {login_url}\n"
                f"  username: {username}\n  password: {password}\n"
                f"This password is shown only now. Change it after logging in.\n{bar}"
            )
        )
