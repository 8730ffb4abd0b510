"""Django ValidationErrors, the one way services refuse, and how the doors read them."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext_noop


def field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    """A ValidationError bound to one field that keeps its code (API error shapes use it)."""
    return ValidationError({field: ValidationError(message, code=code)})


def error_items(exc: ValidationError) -> list[tuple[str | None, str, str]]:
    """Every ``(field, code, message)`` of a ValidationError, whatever its shape;
    ``field`` is None for an error of the whole request."""
    if hasattr(exc, "error_dict"):
        groups = [
            (None if field == NON_FIELD_ERRORS else field, errors)
            for field, errors in exc.error_dict.items()
        ]
    else:
        groups = [(None, exc.error_list)]
    return [
        (field, error.code or "invalid", error.messages[0])
        for field, errors in groups
        for error in errors
    ]


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first ``(code, message)`` of a ValidationError: what a page or the socket shows."""
    _field, code, message = error_items(exc)[0]
    return code, message


def unstorable(value: str) -> str | None:
    """Why PostgreSQL would refuse ``value`` as text (NUL characters, lone surrogates), or None.

    The reason is in English; ``gettext`` it to show it in the user's language."""
    if "\x00" in value:
        return gettext_noop("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return gettext_noop("must be valid Unicode text")
    return None
