"""Reading ids from query strings and forms."""

from __future__ import annotations


def positive_int(value: str | None) -> int | None:
    """A positive id as typed in a query string or form field, or None (absent, not a
    number, zero, or too long for the database's integers)."""
    value = (value or "").strip()
    if not value.isdigit() or len(value) > 15:
        return None
    number = int(value)
    return number or None
