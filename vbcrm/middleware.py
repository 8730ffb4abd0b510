"""Keeps the REST API's answers in its one error shape where ninja cannot see them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from vbcrm.api_base import error_response

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def body_limit(request: HttpRequest) -> int:
    """The largest body an API request may carry: a file of the upload limit plus the
    form's other fields in multipart requests, the data limit otherwise."""
    if request.content_type == "multipart/form-data":
        return settings.VBCRM_MAX_UPLOAD_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class ApiMiddleware:
    """For ``/api/`` requests only:

    - refuses a body announced larger than the limits with 413 before reading it
      (Django would spool a huge upload to disk first, then the service refuses it);
    - turns Django's HTML 404 (unknown URL) and 405 (method) into the API's JSON shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > body_limit(request):
            logger.info("api body refused path=%s bytes=%d", request.path, length)
            return error_response(413, "too_large", _("The request body is too large."))
        response = self.get_response(request)
        if response.status_code in (404, 405) and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            if response.status_code == 404:
                return error_response(404, "not_found", _("Not found."))
            return error_response(
                405,
                "method_not_allowed",
                _("Method not allowed."),
                headers={"Allow": response.get("Allow", "")},
            )
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy, with the page's own socket origin added to connect-src.

    CSP Level 3 lets 'self' match ws:/wss: on the page's host, older browsers do not: the
    origin is named (wss:// on a secure request, both schemes otherwise).
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        schemes = ["wss"] if request.is_secure() else ["ws", "wss"]
        update = dict(parts.update or {})
        update["connect-src"] = [
            *update.get("connect-src", []),
            *(f"{scheme}://{host}" for scheme in schemes),
        ]
        parts.update = update
        return parts
