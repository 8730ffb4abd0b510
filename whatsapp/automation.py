"""The checks on a number's automatic-reply settings and keyword rules, shared by the
owner's page, the API and Django admin: every field is checked before anything is
saved, and each refusal names its field."""

from __future__ import annotations

from typing import Any

import regex
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from vbcrm.errors import unstorable
from vbcrm.variables import variables_check
from whatsapp import hours
from whatsapp.models import KeywordRule

MAX_REGEX_LENGTH = 200
MAX_MESSAGE_LENGTH = 4096

# (field, lowest, highest) of the numeric settings.
LIMITS: tuple[tuple[str, int, int], ...] = (
    ("greeting_delay_seconds", 0, 60),
    ("away_period_hours", 1, 168),
    ("auto_close_hours", 0, 24 * 90),
    ("auto_daily_cap", 1, 100),
    ("agent_silence_minutes", 0, 24 * 60),
    ("auto_rate_per_minute", 1, 600),
)
MESSAGES = ("greeting_message", "away_message", "auto_close_message")
# What the owner's page and Django admin edit.
SETTINGS_FIELDS = (
    "time_zone",
    "hours_enabled",
    "business_hours",
    "greeting_enabled",
    "greeting_message",
    "greeting_on",
    "greeting_delay_seconds",
    "away_enabled",
    "away_message",
    "away_period_hours",
    "auto_close_hours",
    "auto_close_message",
    "auto_daily_cap",
    "agent_silence_minutes",
    "auto_rate_per_minute",
)


def compile_rule(match: str, pattern: str) -> regex.Pattern[str] | None:
    """A regex rule's compiled pattern (None for the other kinds): ValueError when it does
    not compile or is too long. It runs on the message's text with accents removed and in
    lower case, like the other kinds, with the ``regex`` module, whose searches take a
    time limit (``conversations.services.autoreply``): one owner's pattern that backtracks
    without end must not stall the worker that serves every number."""
    if match != KeywordRule.Match.REGEX:
        return None
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(_("at most %(n)d characters") % {"n": MAX_REGEX_LENGTH})
    try:
        # V0: the standard library's syntax and behaviour, which the page documents.
        return regex.compile(pattern, regex.IGNORECASE | regex.V0)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _text_errors(field: str, value: str, errors: dict[str, list[str]]) -> None:
    reason = unstorable(value)
    if reason is not None:
        errors.setdefault(field, []).append(_(reason))
    elif len(value) > MAX_MESSAGE_LENGTH:
        errors.setdefault(field, []).append(
            _("At most %(n)d characters.") % {"n": MAX_MESSAGE_LENGTH}
        )
    else:
        try:
            variables_check(value, field)
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.message_dict[field])


def settings_clean(values: dict[str, Any]) -> dict[str, Any]:
    """The settings in ``values`` checked and normalised (``business_hours`` as the stored
    JSON, numbers as ints); ValidationError with every bad field's message otherwise."""
    errors: dict[str, list[str]] = {}
    out = dict(values)
    try:
        hours.zone(str(values.get("time_zone", "")))
        out["time_zone"] = str(values["time_zone"]).strip()
    except hours.ScheduleError as exc:
        errors.setdefault(exc.field, []).append(exc.message)
    try:
        hours.parse(values.get("business_hours") or {})
    except hours.ScheduleError as exc:
        errors.setdefault(exc.field, []).append(exc.message)
    for field, low, high in LIMITS:
        if field not in values:
            continue
        try:
            number = int(values[field])
        except (TypeError, ValueError):
            errors.setdefault(field, []).append(_("Enter a whole number."))
            continue
        if not low <= number <= high:
            errors.setdefault(field, []).append(
                _("Between %(low)d and %(high)d.") % {"low": low, "high": high}
            )
        out[field] = number
    for field in MESSAGES:
        if field in values:
            out[field] = str(values[field] or "").strip()
            _text_errors(field, out[field], errors)
    for flag, message in (
        ("greeting_enabled", "greeting_message"),
        ("away_enabled", "away_message"),
    ):
        if values.get(flag) and not out.get(message):
            errors.setdefault(message, []).append(_("Write the message to send."))
    if values.get("away_enabled") and not values.get("hours_enabled"):
        errors.setdefault("hours_enabled", []).append(
            _("The away message goes outside business hours: set them first.")
        )
    if errors:
        raise ValidationError(errors)
    return out


def rule_clean(values: dict[str, Any]) -> dict[str, Any]:
    """A keyword rule's fields checked; ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    out = dict(values)
    match = str(values.get("match") or KeywordRule.Match.CONTAINS)
    if match not in KeywordRule.Match.values:
        errors.setdefault("match", []).append(_("Unknown kind of match."))
    when = str(values.get("when") or KeywordRule.When.ALWAYS)
    if when not in KeywordRule.When.values:
        errors.setdefault("when", []).append(_("Unknown choice."))
    pattern = str(values.get("pattern") or "").strip()
    if not pattern:
        errors.setdefault("pattern", []).append(_("Write the keyword."))
    elif len(pattern) > MAX_REGEX_LENGTH:
        errors.setdefault("pattern", []).append(
            _("At most %(n)d characters.") % {"n": MAX_REGEX_LENGTH}
        )
    else:
        try:
            compile_rule(match, pattern)
        except ValueError as exc:
            errors.setdefault("pattern", []).append(
                _("This regular expression does not work: %(reason)s") % {"reason": exc}
            )
        reason = unstorable(pattern)
        if reason is not None:
            errors.setdefault("pattern", []).append(_(reason))
    answer = str(values.get("answer") or "").strip()
    _text_errors("answer", answer, errors)
    if not answer and not values.get("has_file"):
        errors.setdefault("answer", []).append(_("Write the answer or attach a file."))
    if errors:
        raise ValidationError(errors)
    out.update(match=match, when=when, pattern=pattern, answer=answer)
    out.pop("has_file", None)
    return out
