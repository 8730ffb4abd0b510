"""Pages of the project itself: the user's profile (API tokens), the web app manifest and
the metrics endpoint."""

from __future__ import annotations

import hmac
import json
import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods
from django_prometheus.exports import ExportToDjangoView

from conversations import push_keys
from vbcrm import selectors, services
from vbcrm.models import ApiToken
from vbcrm.types import AuthedRequest

logger = logging.getLogger(__name__)


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Token name"),
        max_length=100,
        help_text=gettext_lazy("What uses it, e.g. “helpdesk integration”."),
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthedRequest) -> HttpResponse:
    """The user's API tokens: create one (its secret is shown on this answer only), revoke."""
    form = TokenCreateForm()
    new_token: services.NewToken | None = None
    if request.method == "POST" and request.POST.get("action") == "revoke":
        try:
            token = selectors.token_get(user=request.user, token_id=int(request.POST["token_id"]))
        except (KeyError, ValueError, OverflowError, ApiToken.DoesNotExist):
            raise Http404 from None
        services.token_revoke(token=token)
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        return redirect("profile")
    if request.method == "POST":
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            try:
                new_token = services.token_create(user=request.user, name=form.cleaned_data["name"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                form = TokenCreateForm()
    response = render(
        request,
        "profile.html",
        {
            "form": form,
            "new_token": new_token,
            "tokens": selectors.token_list(user=request.user),
            "push_key": push_keys.public_key(),
        },
    )
    if new_token is not None:
        # This answer holds a secret: no cache (nor the browser's back button) may keep it.
        response["Cache-Control"] = "no-store"
    return response


THEME_COLOR = "#075e54"


@require_GET
def web_manifest(request: HttpRequest) -> HttpResponse:
    """The web app manifest (installing the inbox on a phone or desktop). Public: browsers
    fetch it without the session cookie."""
    icons = [
        {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        {
            "src": static("icons/icon-maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    manifest = {
        "name": "VB CRM",
        "short_name": "VB CRM",
        "description": _("The team's WhatsApp inbox."),
        "lang": request.LANGUAGE_CODE,
        "start_url": reverse("inbox"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#f0f2f5",
        "theme_color": THEME_COLOR,
        "icons": icons,
    }
    return HttpResponse(
        json.dumps(manifest, ensure_ascii=False),
        content_type="application/manifest+json; charset=utf-8",
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper that sends ``Authorization: Bearer <VBCRM_METRICS_TOKEN>``.

    Without a configured token the endpoint does not exist (404), so a default
    install exposes nothing.
    """
    expected = settings.VBCRM_METRICS_TOKEN
    if not expected:
        raise Http404
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), expected):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return ExportToDjangoView(request)
