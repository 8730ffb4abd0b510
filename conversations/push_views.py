"""Web push from the profile page: a browser turns notifications on (its subscription
is kept) or off; and the service worker, served from the site's root so it may handle
every page's notifications."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from conversations.services import push
from vbcrm.errors import first_error
from vbcrm.types import AuthedRequest

MAX_BODY = 4096


@login_required
@require_POST
def push_subscribe(request: AuthedRequest) -> HttpResponse:
    """Body: the browser's PushSubscription as JSON (endpoint and keys)."""
    if len(request.body) > MAX_BODY:
        return JsonResponse({"error": "too large"}, status=413)
    try:
        data = json.loads(request.body)
        keys = data.get("keys") or {}
        push.push_subscription_save(
            user=request.user,
            endpoint=str(data.get("endpoint") or ""),
            p256dh=str(keys.get("p256dh") or ""),
            auth=str(keys.get("auth") or ""),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except (ValueError, AttributeError):
        return JsonResponse({"error": "invalid"}, status=400)
    except ValidationError as exc:
        return JsonResponse({"error": first_error(exc)[1]}, status=400)
    return JsonResponse({"ok": True}, status=201)


@login_required
@require_POST
def push_unsubscribe(request: AuthedRequest) -> HttpResponse:
    try:
        endpoint = str(json.loads(request.body).get("endpoint") or "")
    except (ValueError, AttributeError):
        return JsonResponse({"error": "invalid"}, status=400)
    deleted = push.push_subscription_delete(user=request.user, endpoint=endpoint)
    return JsonResponse({"deleted": deleted})


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """static/sw.js at /sw.js: a worker's scope is at most its own path's folder, and
    the notifications open pages anywhere on the site. Never cached long: browsers
    check it for updates."""
    path = finders.find("sw.js")
    if not path:
        raise Http404
    with open(path, "rb") as source:
        body = source.read()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response
