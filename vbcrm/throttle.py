"""Login throttling (django-axes): who the client is, and what a locked-out client is told.

Every door that checks a password goes through ``django.contrib.auth.authenticate``
(the login page, the admin login, the password change page), so axes counts its
failures by account and by client address and refuses them all once either is locked
out. The forms below turn axes' refusal into a message with the lockout time, and
``lockout_response`` answers it with 429 on the page that was asked for.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or, behind ``VBCRM_TRUSTED_PROXY_COUNT``
    proxies, the address the outermost of them saw.

    Each proxy appends the address it was connected from to ``X-Forwarded-For``, so the
    client is the entry that many places from the right; whatever the client wrote to the
    left of it is ignored. A request with fewer entries did not come through the proxies
    and is judged by its connection's address.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.VBCRM_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]


def cool_off() -> timedelta | None:
    return settings.AXES_COOLOFF_TIME


def lockout_message() -> str:
    """What a locked-out client is told, with how long the lockout lasts."""
    delta = cool_off()
    if not delta:
        return _(
            "Too many failed login attempts. This account or address is locked: "
            "ask an admin to unlock it."
        )
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    return ngettext(
        "Too many failed login attempts. Try again in %(minutes)d minute.",
        "Too many failed login attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def locked_out(request: HttpRequest | None) -> bool:
    return bool(getattr(request, "axes_locked_out", False))


# The mixin's base for the type checker: the forms it is mixed into.
if TYPE_CHECKING:
    _AuthenticationForm = AuthenticationForm
else:
    _AuthenticationForm = object


class LockoutMessageMixin(_AuthenticationForm):
    """An authentication form that says so, with the lockout time, when axes refused it."""

    locked_out_message: str = ""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if locked_out(self.request):
                self.locked_out_message = lockout_message()
                raise ValidationError(self.locked_out_message, code="locked_out") from None
            raise


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    pass


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    pass


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """The current password is checked through ``authenticate``, so guessing it here
    counts (and is refused) like guessing it on the login page."""

    def __init__(self, user, *args, request: HttpRequest | None = None, **kwargs) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        user = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if locked_out(self.request):
            raise ValidationError(lockout_message(), code="locked_out")
        if user is None or user.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """axes' answer to a locked-out attempt: the page that was asked for, carrying the
    lockout message its form added, with status 429 and ``Retry-After``."""
    if isinstance(original_response, HttpResponse) and original_response.status_code == 200:
        response = original_response
        response.status_code = 429
        response.reason_phrase = "Too Many Requests"
    else:
        response = HttpResponse(lockout_message(), status=429, content_type="text/plain")
    delta = cool_off()
    if delta:
        response["Retry-After"] = str(math.ceil(delta.total_seconds()))
    return response
