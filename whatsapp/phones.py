"""Phone numbers as people type them, read with ``phonenumbers`` (Google's libphonenumber)."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _

from vbcrm.errors import field_error

# What a typed phone may hold besides digits. Letters are refused up front: the library
# would read them as a vanity number ("1-800-FLOWERS") or an extension ("x12").
_PHONE_CHARS = re.compile(r"[\d\s\-().+/]*")


def normalise_phone(phone: str) -> str:
    """``+55 (11) 99999-0001`` -> ``5511999990001``; refuses what cannot be a phone number."""
    digits = re.sub(r"[\s\-().+]", "", phone or "")
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise field_error(
            "phone", _("Enter the phone number with country code, digits only."), "invalid_phone"
        )
    return digits


def phone_parse(phone: str, default_country: str | None = None) -> str | None:
    """A phone as digits with its country code, or None when it is not a valid number.

    ``+55 (11) 98888-0001`` and ``0055 11 98888 0001`` are international. Without ``+``
    or ``00`` the number is national to ``default_country`` (a calling code such as
    ``55``) when one is given and the number is valid there; otherwise it must start
    with its own country code (``5511988880001``).
    """
    text = (phone or "").strip()
    if not text or not _PHONE_CHARS.fullmatch(text):
        return None
    compact = re.sub(r"[\s\-().]", "", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    candidates: list[tuple[str, str | None]] = []
    if compact.startswith("+"):
        candidates.append((compact, None))
    else:
        if default_country and default_country.isdigit():
            home = phonenumbers.region_code_for_country_code(int(default_country))
            candidates.append((compact, home))
        candidates.append(("+" + compact, None))
    for candidate, region in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return f"{number.country_code}{number.national_number}"
    return None


def phone_from_input(phone: str, default_country: str | None = None) -> str:
    """A phone an agent typed, as digits with the country code (see ``phone_parse``;
    ``default_country`` defaults to ``VBCRM_DEFAULT_COUNTRY_CODE``); a ValidationError on
    the field ``phone`` when it is not a valid number."""
    if default_country is None:
        default_country = settings.VBCRM_DEFAULT_COUNTRY_CODE
    digits = phone_parse(phone, default_country)
    if digits is None:
        raise field_error(
            "phone",
            _("Enter the phone number with its country code, e.g. +55 11 98888 0001."),
            "invalid_phone",
        )
    return digits
