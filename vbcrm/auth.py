"""The login backend: Django's ``ModelBackend``, whose user comes with their presence."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

UserModel = get_user_model()


class UserBackend(ModelBackend):
    """Django's ``ModelBackend``, with two differences.

    A request's user comes with their presence (``select_related``): the header's
    availability switch reads it on every page, and it cost a query of its own.

    A failed login stops here (``PermissionDenied``, which ends Django's walk through
    the backends; the failure is still signalled, so django-axes counts it).
    ``ModelBackend`` stays listed after this backend only for the sessions opened before
    it was (a session names the backend that logged it in), and would otherwise check
    the same password a second time.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and _has_credentials(username, password, kwargs):
            raise PermissionDenied
        return user

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = await super().aauthenticate(request, username=username, password=password, **kwargs)
        if user is None and _has_credentials(username, password, kwargs):
            raise PermissionDenied
        return user

    def get_user(self, user_id: Any) -> Any:
        try:
            user = UserModel._default_manager.select_related("presence").get(pk=user_id)
        except UserModel.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    async def aget_user(self, user_id: Any) -> Any:
        try:
            user = await UserModel._default_manager.select_related("presence").aget(pk=user_id)
        except UserModel.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


def _has_credentials(username: str | None, password: str | None, kwargs: dict) -> bool:
    """A username and a password were given (``ModelBackend`` also takes the username
    under the user model's field name): a login this backend refused."""
    name = username if username is not None else kwargs.get(UserModel.USERNAME_FIELD)
    return name is not None and password is not None
