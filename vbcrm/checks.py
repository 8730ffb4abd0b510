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


@register(Tags.security, deploy=True)
def check_client_address_behind_proxy(app_configs, **kwargs):
    if (
        getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        and settings.VBCRM_TRUSTED_PROXY_COUNT <= 0
    ):
        return [
            Warning(
                "DJANGO_BEHIND_TLS_PROXY is on but VBCRM_TRUSTED_PROXY_COUNT is 0: login "
                "throttling sees every client as the proxy's address, so one client's failed "
                "logins lock everyone out.",
                hint="Set VBCRM_TRUSTED_PROXY_COUNT to the number of proxies that append the "
                "client's address to X-Forwarded-For (usually 1).",
                id="vbcrm.W002",
            )
        ]
    return []
