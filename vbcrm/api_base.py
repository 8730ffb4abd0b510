"""The REST API's shared parts: authentication, the one error shape and its handlers.

Every 4xx/5xx the API answers is ``{"error": "<code>", "detail": ...}``. The
routers (``conversations/api.py``, ``whatsapp/api.py``) raise ``ApiError`` or let
a service's Django ``ValidationError`` through; the handlers registered by
``install_error_handlers`` turn both, and ninja's own errors, into that shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from vbcrm.errors import error_items, unstorable
from vbcrm.selectors import token_find_active
from vbcrm.services import token_touch
from vbcrm.types import User

logger = logging.getLogger(__name__)
E = TypeVar("E", bound=Exception)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Service error codes that mean "the request is fine but the state forbids it".
CONFLICT_CODES = frozenset(
    {"limit_reached", "duplicate_name", "duplicate_number", "connected", "not_failed"}
)
TOO_LARGE_CODES = frozenset({"too_large"})

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


class ErrorOut(Schema):
    """The body of every error answer."""

    error: str = Field(description="A stable, machine-readable code, e.g. not_found.")
    detail: Any = Field(
        None,
        description=(
            "A human-readable message, or for invalid input a list of "
            '{"field", "message", "code"} objects naming each field at fault.'
        ),
    )


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error = error or _STATUS_CODES.get(status, "error")
        self.detail = detail
        self.headers = headers or {}
        super().__init__(status, self.error)


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL characters and lone surrogates in text: refuse them at the door
    # (400 naming the field) rather than fail inside the database (500).
    reason = unstorable(value)
    if reason is not None:
        # The code the page and the socket answer for the same text.
        raise PydanticCustomError("invalid", reason)
    return value


# Text from clients that may reach the database.
SafeStr = Annotated[str, AfterValidator(_storable)]


def not_found() -> ApiError:
    return ApiError(404, "not_found", _("Not found."))


def field_errors(field: str, message: str, code: str = "invalid", status: int = 400) -> ApiError:
    return ApiError(status, code, [{"field": field, "message": message, "code": code}])


# The OpenAPI description of an endpoint answering a file (any type) on 200.
FILE_ANSWER: dict = {
    "responses": {
        200: {
            "description": "The file, with its MIME type.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


def errors(*codes: int) -> dict[int, type[ErrorOut]]:
    """The error answers an operation declares in the OpenAPI schema."""
    return dict.fromkeys(codes, ErrorOut)


def error_response(
    status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The error shape outside ninja (middleware, plain views)."""
    response = JsonResponse({"error": error, "detail": detail}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- Authentication -----------------------------------------------------------------------


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``: a token from the profile page, admin or command.

    A request that sends the header is judged by it alone: a wrong or revoked
    token is refused even if the browser also has a session.
    """

    def __call__(self, request: HttpRequest) -> User | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _sep, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", _("Use the header Authorization: Bearer <token>."))
        return self.authenticate(request, secret.strip())

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        api_token = token_find_active(token=token)
        if api_token is None:
            raise ApiError(401, "invalid_token", _("This token is unknown or revoked."))
        token_touch(token=api_token)
        # Code below the API (services, templates) reads request.user, as for pages.
        request.user = api_token.user
        return api_token.user


class SessionCsrfAuth(APIKeyCookie):
    """The browser's login session; unsafe methods must carry the CSRF token
    (header ``X-CSRFToken``), as every form of the site does."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> User | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        # ninja's own cookie auth checks CSRF before it knows there is a user, which
        # would answer 403 to an anonymous request; ours answers 401 to those.
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise ApiError(
                403,
                "csrf_failed",
                _("CSRF check failed: send the csrftoken cookie's value in X-CSRFToken."),
            )
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        return None  # unused: __call__ does the work


API_AUTH = [BearerTokenAuth(), SessionCsrfAuth()]


def request_user(request: HttpRequest) -> User:
    """The authenticated user (set by one of ``API_AUTH``)."""
    return request.auth  # type: ignore[attr-defined]


# --- Errors -----------------------------------------------------------------------------------


def from_validation_error(exc: DjangoValidationError) -> ApiError:
    """A service's refusal as an API error: 409 for state conflicts, 413 for sizes, else 400."""
    items: list[dict[str, Any]] = [
        {"field": field, "message": message, "code": code}
        for field, code, message in error_items(exc)
    ]
    codes = [item["code"] for item in items]
    if any(code in CONFLICT_CODES for code in codes):
        status = 409
        code = next(code for code in codes if code in CONFLICT_CODES)
    elif any(code in TOO_LARGE_CODES for code in codes):
        status, code = 413, "too_large"
    else:
        status, code = 400, "invalid"
    return ApiError(status, code, items)


def _field_of(loc: list[Any]) -> str:
    """``["body", "payload", "text"]`` -> ``text``; ``["query", "limit"]`` -> ``limit``."""
    source, rest = (loc[0], loc[1:]) if loc else ("body", [])
    if source == "body" and len(rest) > 1:
        rest = rest[1:]  # the name of the view's schema argument, not the client's
    return ".".join(str(part) for part in rest) or str(source)


def install_error_handlers(api: NinjaAPI) -> None:
    def render(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = api.create_response(
            request, {"error": exc.error, "detail": exc.detail}, status=exc.status
        )
        for name, value in exc.headers.items():
            response[name] = value
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="vbcrm"'
        return response

    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return render(request, exc)

    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        detail = [
            {
                "field": _field_of(list(err.get("loc", []))),
                "message": err.get("msg", ""),
                "code": err.get("type", "invalid"),
            }
            for err in exc.errors
        ]
        return render(request, ApiError(400, "invalid", detail))

    def on_django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        return render(request, from_validation_error(exc))

    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return render(request, ApiError(401, "unauthorized", _("Log in or send an API token.")))

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return render(request, ApiError(exc.status_code, None, str(exc)))

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return render(request, not_found())

    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return render(request, ApiError(413, "too_large", _("The request body is too large.")))

    def on_bad_request(request: HttpRequest, exc: Exception) -> HttpResponse:
        return render(request, ApiError(400, "bad_request", _("The request could not be read.")))

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.error("api error path=%s", request.path, exc_info=exc)
        return render(
            request, ApiError(500, "server_error", _("Something went wrong on our side."))
        )

    def handle(exc_class: type[E], handler: Callable[[HttpRequest, E], HttpResponse]) -> None:
        # django-ninja annotates the handler as taking the exception or its class; it is
        # only ever called with the exception.
        api.add_exception_handler(exc_class, handler)  # type: ignore[arg-type]

    handle(ApiError, on_api_error)
    handle(NinjaValidationError, on_validation)
    handle(DjangoValidationError, on_django_validation)
    handle(AuthenticationError, on_authentication)
    handle(HttpError, on_http_error)
    handle(Http404, on_not_found)
    handle(RequestDataTooBig, on_too_big)
    handle(SuspiciousOperation, on_bad_request)
    handle(MultiPartParserError, on_bad_request)
    handle(Exception, on_unexpected)
