"""REST API for the linked numbers (mounted under /api/whatsapp/ by vbcrm/api.py).

Everyone who works a number (owner or agent) may read it; only its owner may
manage it (link, log out, delete, see its QR code). An outsider gets 404 for
every id, as if the number did not exist; an agent who tries to manage gets 403.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import qrcode
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema, Status
from pydantic import ConfigDict, Field
from qrcode.image.pil import PilImage

from vbcrm.api_base import ApiError, SafeStr, errors, not_found, request_user
from whatsapp import selectors, services
from whatsapp.models import WhatsAppSession
from whatsapp.qr import qr_svg

logger = logging.getLogger(__name__)

router = Router(tags=["numbers"])

NumberId = Path(..., ge=1, le=2**53, examples=[1])
# Inline enum: TextChoices named "Status" would clash in the OpenAPI components.
# Built at run time, so the type checker sees it as the string it holds.
if TYPE_CHECKING:
    NumberStatus = str
else:
    NumberStatus = Literal[tuple(WhatsAppSession.Status.values)]


class NumberOut(Schema):
    id: int
    name: str
    role: Literal["owner", "agent"] = Field(description="The caller's role on this number.")
    status: NumberStatus
    status_detail: str
    phone_number: str
    push_name: str
    has_qr: bool = Field(description="A QR code is waiting to be scanned: GET .../qr.")
    pair_code: str | None = Field(
        description="The pairing code to type on the phone (owner only; null for agents)."
    )
    logout_requested: bool
    connected_at: datetime | None
    last_event_at: datetime | None
    created_at: datetime


class NumberIn(Schema):
    # Fields the client may not set (an owner_id above all) are ignored: the owner is the
    # authenticated user.
    model_config = ConfigDict(extra="ignore")

    name: SafeStr = Field(description="A name for the number, unique among yours.")


class PairIn(Schema):
    model_config = ConfigDict(extra="ignore")

    phone: SafeStr = Field(
        "",
        description="Link by pairing code for this phone (country code, digits); "
        "empty: link by QR code.",
    )


class SessionHealthOut(Schema):
    id: int
    name: str
    status: NumberStatus
    lease_holder: str = Field(description="The worker running the number, empty when none.")
    lease_expires_at: datetime | None
    lease_live: bool = Field(description="A worker holds an unexpired lease on the number.")
    last_event_at: datetime | None = Field(description="The number's latest WhatsApp activity.")
    child_restarts: int
    silent: bool = Field(
        description="Connected, yet nothing heard from WhatsApp for longer than "
        "WHATSAPP_SILENCE_SECONDS."
    )


def _number_out(session: WhatsAppSession, user_id: int) -> dict[str, Any]:
    owner = session.owner_id == user_id
    return {
        "id": session.pk,
        "name": session.name,
        "role": "owner" if owner else "agent",
        "status": session.status,
        "status_detail": session.status_detail,
        "phone_number": session.phone_number,
        "push_name": session.push_name,
        "has_qr": bool(session.qr_code),
        "pair_code": (session.pair_code or "") if owner else None,
        "logout_requested": session.logout_requested,
        "connected_at": session.connected_at,
        "last_event_at": session.last_event_at,
        "created_at": session.created_at,
    }


def _visible(request: HttpRequest, session_id: int) -> WhatsAppSession:
    try:
        return selectors.session_get(user=request_user(request), session_id=session_id)
    except WhatsAppSession.DoesNotExist:
        raise not_found() from None


def _owned(request: HttpRequest, session_id: int) -> WhatsAppSession:
    """The number if the caller owns it; 403 for its agents, 404 for everyone else."""
    user = request_user(request)
    try:
        return selectors.session_owned_list(user=user).get(pk=session_id)
    except WhatsAppSession.DoesNotExist:
        pass
    _visible(request, session_id)  # 404 unless the caller works the number
    raise ApiError(403, "owner_only", _("Only the number's owner may do this."))


@router.get("/numbers", response={200: list[NumberOut], **errors(401)}, summary="List numbers")
def number_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The numbers the caller owns or works as an agent."""
    user = request_user(request)
    return [_number_out(s, user.pk) for s in selectors.session_list(user=user).order_by("name")]


@router.post(
    "/numbers",
    response={201: NumberOut, **errors(400, 401, 403, 409, 413)},
    summary="Create a number",
)
def number_create(request: HttpRequest, payload: NumberIn) -> Status:
    """A new number owned by the caller, to link next (its QR code comes by socket or
    ``GET .../qr``). 409 when the caller has reached the limit or used the name."""
    user = request_user(request)
    session = services.session_create(owner=user, name=payload.name)
    return Status(201, _number_out(session, user.pk))


@router.get(
    "/numbers/{number_id}",
    response={200: NumberOut, **errors(401, 404)},
    summary="Get a number",
)
def number_detail(request: HttpRequest, number_id: int = NumberId) -> dict[str, Any]:
    return _number_out(_visible(request, number_id), request_user(request).pk)


@router.get(
    "/numbers/{number_id}/qr",
    response=errors(400, 401, 403, 404, 409),
    summary="Get a number's QR code",
    openapi_extra={
        "responses": {
            200: {
                "description": "The QR code to scan with WhatsApp (Linked devices).",
                "content": {
                    "image/svg+xml": {"schema": {"type": "string"}},
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    },
)
def number_qr(
    request: HttpRequest,
    number_id: int = NumberId,
    format: Literal["svg", "png"] = Query("svg"),  # noqa: A002  (the query parameter's name)
) -> HttpResponse:
    """The current QR code, as SVG or PNG. 409 while there is none (connected, or the
    worker has not produced one yet); codes rotate every few seconds."""
    session = _owned(request, number_id)
    if not session.qr_code:
        raise ApiError(409, "no_qr", _("There is no QR code to scan right now."))
    if format == "png":
        buffer = io.BytesIO()
        qrcode.make(session.qr_code, box_size=8, border=2, image_factory=PilImage).save(
            buffer, format="PNG"
        )
        response = HttpResponse(buffer.getvalue(), content_type="image/png")
    else:
        response = HttpResponse(qr_svg(session.qr_code), content_type="image/svg+xml")
    # Whoever scans it links their phone to this number: never keep a copy anywhere.
    response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/numbers/{number_id}/pair",
    response={202: NumberOut, **errors(400, 401, 403, 404, 409, 413)},
    summary="Link a number (QR or pairing code)",
)
def number_pair(
    request: HttpRequest, payload: PairIn | None = None, number_id: int = NumberId
) -> Status:
    """Ask the worker to link the number: by QR code, or with ``phone`` by a pairing code
    (it appears as ``pair_code`` within seconds). 409 when it is already connected."""
    session = _owned(request, number_id)
    phone = payload.phone if payload else ""
    session = services.session_request_link(session=session, pair_phone=phone)
    return Status(202, _number_out(session, request_user(request).pk))


@router.post(
    "/numbers/{number_id}/logout",
    response={202: NumberOut, **errors(401, 403, 404)},
    summary="Unlink a number from WhatsApp",
)
def number_logout(request: HttpRequest, number_id: int = NumberId) -> Status:
    """The worker holding the number logs it out (``logout_requested`` until done); with
    no worker running it, it is marked logged out at once."""
    session = services.session_request_logout(session=_owned(request, number_id))
    return Status(202, _number_out(session, request_user(request).pk))


@router.delete(
    "/numbers/{number_id}",
    response={204: None, **errors(401, 403, 404)},
    summary="Delete a number",
)
def number_delete(request: HttpRequest, number_id: int = NumberId) -> Status:
    """Deletes the number with all its conversations and messages."""
    services.session_delete(session=_owned(request, number_id))
    return Status(204, None)


@router.get(
    "/sessions/health",
    response={200: list[SessionHealthOut], **errors(401)},
    summary="Health of the caller's numbers",
)
def sessions_health(request: HttpRequest) -> list[dict[str, Any]]:
    """Per number: state, the worker holding it and until when, the latest WhatsApp
    activity, client restarts, and whether a connected number has gone silent."""
    now = timezone.now()
    silence = timedelta(seconds=settings.WHATSAPP_SILENCE_SECONDS)
    rows = []
    for s in selectors.session_list(user=request_user(request)).order_by("name"):
        lease_live = bool(s.lease_holder and s.lease_expires_at and s.lease_expires_at > now)
        silent = s.status == WhatsAppSession.Status.CONNECTED and (
            s.last_event_at is None or s.last_event_at < now - silence
        )
        rows.append(
            {
                "id": s.pk,
                "name": s.name,
                "status": s.status,
                "lease_holder": s.lease_holder,
                "lease_expires_at": s.lease_expires_at,
                "lease_live": lease_live,
                "last_event_at": s.last_event_at,
                "child_restarts": s.child_restarts,
                "silent": silent,
            }
        )
    return rows
