"""Answers to htmx requests that the pages share."""

from __future__ import annotations

from django.http import HttpResponse
from django_htmx.http import trigger_client_event


def toast(response: HttpResponse, message: str, level: str = "success") -> HttpResponse:
    """Ask the page to show a toast (static/js/app.js listens for ``vb:toast``); the
    header it rides on survives error statuses too."""
    return trigger_client_event(response, "vb:toast", {"level": level, "message": str(message)})
