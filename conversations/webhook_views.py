"""The webhooks page: an owner registers endpoints for their numbers (the secret is
shown once, when it is made), edits or deletes them, and reads each one's delivery log,
with "send again". Plain form posts."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from conversations import webhook_selectors
from conversations.models import WebhookDelivery, WebhookEndpoint
from conversations.services import webhooks
from vbcrm.types import AuthedRequest
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_owned_list


def _values(request: AuthedRequest, owned: list[WhatsAppSession]) -> dict[str, Any]:
    post = request.POST
    chosen = set(post.getlist("session_ids"))
    return {
        "url": post.get("url", ""),
        "description": post.get("description", ""),
        "events": [e for e in post.getlist("events") if e in webhooks.EVENT_TYPES],
        # Only the user's own numbers can be chosen: others are ignored.
        "sessions": [s for s in owned if str(s.pk) in chosen],
        "active": post.get("active") == "on",
    }


def _errors(exc: ValidationError) -> dict[str, str]:
    if hasattr(exc, "error_dict"):
        return {
            ("other" if k == "__all__" else k): " ".join(v) for k, v in exc.message_dict.items()
        }
    return {"other": " ".join(exc.messages)}


def _page(
    request: AuthedRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request,
        template,
        {"event_choices": WebhookEndpoint.Event.choices, **context},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: AuthedRequest) -> HttpResponse:
    """The user's endpoints, and a form to register one (POST)."""
    owned = list(session_owned_list(user=request.user).order_by("name"))
    form_errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "url": "",
        "description": "",
        "events": [WebhookEndpoint.Event.MESSAGE_RECEIVED],
        "sessions": owned[:1],
        "active": True,
    }
    created: WebhookEndpoint | None = None
    status = 200
    if request.method == "POST":
        values = _values(request, owned)
        try:
            if not values["sessions"]:
                raise ValidationError({"sessions": _("Choose one or more of your numbers.")})
            created = webhooks.webhook_endpoint_create(owner=request.user, **values)
        except ValidationError as exc:
            form_errors, status = _errors(exc), 400
        else:
            # Rendered, not redirected: the secret is on this answer and nowhere else.
            status = 201
    response = _page(
        request,
        "conversations/webhooks.html",
        {
            "endpoints": webhook_selectors.webhook_endpoint_list(user=request.user),
            "owned": owned,
            "values": values,
            "chosen_ids": [s.pk for s in values["sessions"]],
            "form_errors": form_errors,
            "created": created,
        },
        status,
    )
    if created is not None:
        # This answer holds the secret: no cache (nor the back button) may keep it.
        response["Cache-Control"] = "no-store"
    return response


def _endpoint_or_404(request: AuthedRequest, endpoint_id: int) -> WebhookEndpoint:
    try:
        return webhook_selectors.webhook_endpoint_get(user=request.user, endpoint_id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404 from None


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: AuthedRequest, endpoint_id: int) -> HttpResponse:
    """One endpoint: its settings (POST saves them) and its delivery log."""
    endpoint = _endpoint_or_404(request, endpoint_id)
    owned = list(session_owned_list(user=request.user).order_by("name"))
    form_errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "sessions": list(endpoint.sessions.all()),
        "active": endpoint.active,
    }
    if request.method == "POST":
        values = _values(request, owned)
        try:
            webhooks.webhook_endpoint_update(endpoint=endpoint, **values)
        except ValidationError as exc:
            form_errors = _errors(exc)
            endpoint.refresh_from_db()
        else:
            messages.success(request, _("Webhook saved."))
            return redirect("conversations:webhook_detail", endpoint.pk)
    return _page(
        request,
        "conversations/webhook_detail.html",
        {
            "endpoint": endpoint,
            "owned": owned,
            "values": values,
            "chosen_ids": [s.pk for s in values["sessions"]],
            "form_errors": form_errors,
            "deliveries": webhook_selectors.webhook_delivery_log(endpoint=endpoint),
        },
        400 if form_errors else 200,
    )


@login_required
@require_POST
def webhook_delete(request: AuthedRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    webhooks.webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, _("Webhook deleted."))
    return redirect("conversations:webhooks")


@login_required
@require_POST
def webhook_resend(request: AuthedRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = webhook_selectors.webhook_delivery_get(
            user=request.user, delivery_id=delivery_id
        )
    except WebhookDelivery.DoesNotExist:
        raise Http404 from None
    webhooks.webhook_delivery_resend(delivery=delivery)
    messages.success(request, _("The event will be sent again."))
    return redirect("conversations:webhook_detail", delivery.endpoint_id)
