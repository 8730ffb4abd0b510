"""Phone numbers as people type them."""

from __future__ import annotations

import re

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
