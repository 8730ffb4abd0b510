"""Types the apps' annotations share.

``User`` is the project's user model (``settings.AUTH_USER_MODEL``, Django's own). Import
this module where ``django.contrib.auth.models`` may be imported: after app loading.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

__all__ = ["AnyUser", "AuthedRequest", "User"]

# Who a request may carry: an account, or nobody signed in.
AnyUser = User | AnonymousUser


class AuthedRequest(HttpRequest):
    """A request to a ``login_required`` view: its user is an account. django-htmx's
    middleware (on every request) adds ``htmx``."""

    user: User
    htmx: HtmxDetails
