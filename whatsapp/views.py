"""The Connections page: the user's numbers with their live status, linking by QR code or
pairing code, logout and delete.

Everyone who works a number sees it here; only its owner manages it (the others get
403 on the actions and on the linking panel, and never see the buttons). The QR and
pairing codes are the owner's alone: an agent's card says the number waits for its owner
to link it. Live changes arrive over the socket as ``session_status`` events
(static/js/numbers.js).
"""

from __future__ import annotations

import base64
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vbcrm.htmx import toast
from vbcrm.types import AuthedRequest
from whatsapp import selectors, services
from whatsapp.models import WhatsAppSession
from whatsapp.qr import qr_svg

logger = logging.getLogger(__name__)


def _visible_or_404(request: AuthedRequest, session_id: int) -> WhatsAppSession:
    try:
        return selectors.session_get(user=request.user, session_id=session_id)
    except WhatsAppSession.DoesNotExist:
        raise Http404 from None


def _owned(request: AuthedRequest, session_id: int) -> WhatsAppSession | None:
    """The number if the user owns it; None for its agents (403); 404 for everyone else."""
    session = _visible_or_404(request, session_id)
    return session if session.owner_id == request.user.pk else None


def _forbidden(request: AuthedRequest) -> HttpResponse:
    text = _("Only the number's owner can do this.")
    if request.htmx:
        return toast(HttpResponse(status=403), text, "error")
    messages.error(request, text)
    return redirect("whatsapp:numbers")


def qr_data_url(code: str) -> str:
    """The QR code as an image URL: an SVG shown through <img> can never run anything."""
    if not code:
        return ""
    encoded = base64.b64encode(qr_svg(code).encode()).decode()
    return f"data:image/svg+xml;base64,{encoded}"


def _link_panel(
    request: AuthedRequest, session: WhatsAppSession, error: str = "", status: int = 200
) -> HttpResponse:
    return render(
        request,
        "whatsapp/_link_panel.html",
        {"s": session, "qr_src": qr_data_url(session.qr_code), "error": error},
        status=status,
    )


@login_required
@require_GET
def numbers(request: AuthedRequest) -> HttpResponse:
    sessions = list(selectors.session_list(user=request.user).order_by("name"))
    owned = sum(1 for s in sessions if s.owner_id == request.user.pk)
    return render(
        request,
        "whatsapp/numbers.html",
        {
            "sessions": sessions,
            "owned": owned,
            "limit": settings.VBCRM_MAX_NUMBERS_PER_OWNER,
        },
    )


@login_required
@require_POST
def create(request: AuthedRequest) -> HttpResponse:
    """Step one of "Connect a number": name it. Answers the linking panel (the QR code
    follows over the socket), or the form again with the reason it was refused."""
    name = request.POST.get("name", "")
    try:
        session = services.session_create(owner=request.user, name=name)
    except ValidationError as exc:
        error = " ".join(exc.messages)
        if request.htmx:
            response = render(
                request,
                "whatsapp/_connect_form.html",
                {"error": error, "name": name},
                status=200,
            )
            return toast(response, error, "error")
        messages.error(request, error)
        return redirect("whatsapp:numbers")
    if request.htmx:
        return toast(_link_panel(request, session), _("Number created. Scan the QR code."))
    messages.success(request, _("Number created. Scan the QR code."))
    return redirect("whatsapp:numbers")


@login_required
@require_http_methods(["GET", "POST"])
def link(request: AuthedRequest, session_id: int) -> HttpResponse:
    """GET: the linking panel as it is now. POST: (re)start linking, by QR code or, with
    ``pair_phone``, by pairing code."""
    session = _owned(request, session_id)
    if session is None:
        # The panel shows the QR and pairing codes: the owner's alone.
        if request.method == "GET" and not request.htmx:
            return HttpResponseForbidden(_("Only the number's owner can do this."))
        return _forbidden(request)
    if request.method == "GET":
        return _link_panel(request, session)
    try:
        session = services.session_request_link(
            session=session, pair_phone=request.POST.get("pair_phone", "")
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
        if request.htmx:
            return toast(_link_panel(request, session, error), error, "error")
        messages.error(request, error)
        return redirect("whatsapp:numbers")
    if not request.htmx:
        return redirect("whatsapp:numbers")
    return _link_panel(request, session)


@login_required
@require_GET
def card(request: AuthedRequest, session_id: int) -> HttpResponse:
    return render(
        request, "whatsapp/_number_card.html", {"s": _visible_or_404(request, session_id)}
    )


@login_required
@require_POST
def logout(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned(request, session_id)
    if session is None:
        return _forbidden(request)
    session = services.session_request_logout(session=session)
    done = _("Logging “%(name)s” out of WhatsApp.") % {"name": session.name}
    if request.htmx:
        return toast(render(request, "whatsapp/_number_card.html", {"s": session}), done)
    messages.success(request, done)
    return redirect("whatsapp:numbers")


@login_required
@require_POST
def delete(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned(request, session_id)
    if session is None:
        return _forbidden(request)
    name = session.name
    services.session_delete(session=session)
    done = _("“%(name)s” was deleted with its conversations.") % {"name": name}
    if request.htmx:
        return toast(HttpResponse(""), done)
    messages.success(request, done)
    return redirect("whatsapp:numbers")
