"""The REST API: one NinjaAPI at /api/ (schema at /api/openapi.json, docs at /api/docs).

Conversations and messages live in ``conversations/api.py``, numbers in
``whatsapp/api.py``; this module mounts them, sets authentication (API token
or browser session) and the error shape, and answers the health checks.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from asgiref.sync import async_to_sync
from django.db import connection
from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from pydantic import Field

from conversations.api import router as conversations_router
from conversations.contact_api import router as contacts_router
from conversations.queue_api import router as queues_router
from conversations.report_api import router as reports_router
from conversations.team_api import router as team_router
from conversations.template_api import router as templates_router
from realtime.layer import layer_round_trip
from vbcrm.api_base import API_AUTH, install_error_handlers
from whatsapp.api import router as numbers_router

logger = logging.getLogger(__name__)

# A layer that does not answer within this is reported down rather than hang the check.
LAYER_TIMEOUT_SECONDS = 2.0

api = NinjaAPI(
    title="VB CRM API",
    version="1",
    description=(
        "The WhatsApp team inbox over HTTP. Authenticate with an API token from your "
        "profile page (`Authorization: Bearer <token>`) or, from the browser, with your "
        "login session plus the `X-CSRFToken` header on writes. Every error answers "
        '`{"error": "<code>", "detail": ...}`.'
    ),
    auth=API_AUTH,
    urls_namespace="api",
)
install_error_handlers(api)
api.add_router("/whatsapp/", conversations_router)
api.add_router("/whatsapp/", team_router)
api.add_router("/whatsapp/", numbers_router)
api.add_router("/whatsapp/", contacts_router)
api.add_router("/whatsapp/", queues_router)
api.add_router("/whatsapp/", templates_router)
api.add_router("/whatsapp/", reports_router)


# --- Health ------------------------------------------------------------------------------


class Check(Schema):
    ok: bool
    ms: float | None = Field(None, description="How long the check took.")
    error: str | None = Field(None, description="What failed (a kind of error, no details).")


class HealthChecks(Schema):
    web: Check
    database: Check
    channel_layer: Check


class HealthOut(Schema):
    status: Literal["ok"]
    checks: HealthChecks


class HealthFailure(Schema):
    status: Literal["fail"]
    checks: HealthChecks


class HealthErrorOut(Schema):
    error: Literal["unhealthy"]
    detail: HealthFailure


def _timed(check) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure is a failed check, reported by kind only
        # The message may hold hosts or credentials (a Redis URL): log it, answer the kind.
        logger.warning("health check failed check=%s error=%r", check.__name__, exc)
        return {"ok": False, "ms": None, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 1), "error": None}


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_channel_layer() -> None:
    """Send a message to a fresh channel and read it back: the layer really carries messages
    (for Redis: it is reachable and answering)."""
    async_to_sync(layer_round_trip)(LAYER_TIMEOUT_SECONDS)


def health(request: HttpRequest) -> Status:
    """This web process, its database and the channel layer (workers and live pages use it).
    200 when all answer; 503 naming what failed."""
    checks = {
        "web": {"ok": True, "ms": 0.0, "error": None},
        "database": _timed(check_database),
        "channel_layer": _timed(check_channel_layer),
    }
    if all(c["ok"] for c in checks.values()):
        return Status(200, {"status": "ok", "checks": checks})
    return Status(503, {"error": "unhealthy", "detail": {"status": "fail", "checks": checks}})


def _health_endpoint(path: str, name: str) -> None:
    def endpoint(request: HttpRequest) -> Status:
        return health(request)

    endpoint.__doc__ = health.__doc__
    api.get(
        path,
        auth=None,
        response={200: HealthOut, 503: HealthErrorOut},
        url_name=name,
        operation_id=name,
        summary="Health check",
        tags=["health"],
    )(endpoint)


# The seed's three services each had a health URL; monitors pointed at them keep working.
_health_endpoint("/whatsapp/health", "health")
_health_endpoint("/baileys-simple/health", "health_baileys")
_health_endpoint("/whatsapp-realtime/health", "health_realtime")
