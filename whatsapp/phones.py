"""Phone numbers as people type them."""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.translation import gettext as _

from vbcrm.errors import field_error


def normalise_phone(phone: str) -> str:
    """``+55 (11) 99999-0001`` -> ``5511999990001``; refuses what cannot be a phone number."""
    digits = re.sub(r"[\s\-().+]", "", phone or "")
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise field_error(
            "phone", _("Enter the phone number with country code, digits only."), "invalid_phone"
        )
    return digits


def phone_from_input(phone: str, default_country: str | None = None) -> str:
    """A phone an agent typed, as digits with the country code.

    ``+55 (11) 98888-0001`` and ``0055 11 98888 0001`` are international: the digits are
    kept. Without ``+`` or ``00``, the number is national when a default country code is
    set (``VBCRM_DEFAULT_COUNTRY_CODE``) and does not already start with it: the code is
    put in front (``11 98888 0001`` -> ``5511988880001``). With no default, such a number
    must already start with its country code (``5511988880001``). A national number
    whose area code starts like the country code needs the ``+`` form.
    """
    if default_country is None:
        default_country = settings.VBCRM_DEFAULT_COUNTRY_CODE
    text = (phone or "").strip()
    compact = re.sub(r"[\s\-().]", "", text)
    international = compact.startswith(("+", "00"))
    digits = compact.lstrip("+")
    if digits.startswith("00") and not compact.startswith("+"):
        digits = digits[2:]
    if (
        digits.isdigit()
        and not international
        and default_country
        and not digits.startswith(default_country)
    ):
        digits = default_country + digits
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise field_error(
            "phone",
            _("Enter the phone number with its country code, e.g. +55 11 98888 0001."),
            "invalid_phone",
        )
    return digits
