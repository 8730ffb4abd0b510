"""System checks for deployment mistakes that Django cannot see."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_channel_layer(app_configs, **kwargs):
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if not settings.EMBEDDED and backend.endswith("InMemoryChannelLayer"):
        return [
            Warning(
                "PostgreSQL is configured but the channel layer is in-memory.",
                hint="Set REDIS_URL so web processes and workers share live updates.",
                id="vbcrm.W001",
            )
        ]
    return []


@register(Tags.compatibility)
def check_gateway(app_configs, **kwargs):
    if settings.WHATSAPP_GATEWAY not in {"neonize", "simulator"}:
        return [
            Error(
                f"WHATSAPP_GATEWAY={settings.WHATSAPP_GATEWAY!r} is not a known gateway.",
                hint="Use 'neonize' (real WhatsApp) or 'simulator' (tests and demos).",
                id="vbcrm.E001",
            )
        ]
    return []
