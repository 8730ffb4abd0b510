"""Pages of the project itself: the user's profile (API tokens) and the metrics endpoint."""

from __future__ import annotations

import hmac
import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods
from django_prometheus.exports import ExportToDjangoView

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
        {"form": form, "new_token": new_token, "tokens": selectors.token_list(user=request.user)},
    )
    if new_token is not None:
        # This answer holds a secret: no cache (nor the browser's back button) may keep it.
        response["Cache-Control"] = "no-store"
    return response


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
