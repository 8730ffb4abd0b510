"""Contacts beyond the inbox: the owner's custom fields and each contact's values.

A custom field belongs to an owner and applies to the contacts of every number they own;
agents of those numbers fill the values in. Values are checked here, per type, whoever
sends them (the contacts page, the API, a CSV import).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from conversations.models import Contact, ContactFieldValue, CustomField
from conversations.services.agent import contact_update
from vbcrm.errors import field_error, unstorable
from vbcrm.types import User

logger = logging.getLogger(__name__)

MAX_FIELDS = 50
MAX_CHOICES = 100
MAX_VALUE_LENGTH = 500
# CSV columns with a meaning of their own: no custom field may take their names.
RESERVED_NAMES = frozenset({"name", "phone", "tags", "notes", "whatsapp_name"})


def value_key(field: CustomField) -> str:
    """How a refused value is named in a ValidationError (and the API's error detail)."""
    return f"custom_fields.{field.name}"


# --- Definitions ---------------------------------------------------------------------------


def _text(value: str, field: str, max_length: int) -> str:
    value = " ".join((value or "").split())
    reason = unstorable(value)
    if reason is not None:
        raise field_error(field, _(reason))
    if len(value) > max_length:
        raise field_error(field, _("At most %(n)d characters.") % {"n": max_length}, "too_long")
    return value


def custom_field_clean(
    *, owner: User, name: str, kind: str, choices: Iterable[str], instance: CustomField | None
) -> tuple[str, str, list[str]]:
    """The definition's name, type and choices, checked (names are unique per owner,
    ignoring case)."""
    name = _text(name, "name", 64)
    if not name:
        raise field_error("name", _("Give the field a name."), "required")
    if name.lower() in RESERVED_NAMES:
        raise field_error(
            "name",
            _("“%(name)s” is a column of its own: pick another name.") % {"name": name},
            "reserved",
        )
    same = CustomField.objects.filter(owner=owner, name__iexact=name)
    if instance is not None:
        same = same.exclude(pk=instance.pk)
    if same.exists():
        raise field_error("name", _("You already have a field with this name."), "duplicate")
    if kind not in CustomField.Kind.values:
        raise field_error("kind", _("Unknown type of field."), "invalid")
    cleaned: list[str] = []
    if kind == CustomField.Kind.CHOICE:
        for choice in choices:
            choice = _text(choice, "choices", 100)
            if choice and choice.lower() not in (c.lower() for c in cleaned):
                cleaned.append(choice)
        if not cleaned:
            raise field_error("choices", _("List the choices, one a line."), "required")
        if len(cleaned) > MAX_CHOICES:
            raise field_error(
                "choices", _("At most %(n)d choices.") % {"n": MAX_CHOICES}, "too_many"
            )
    return name, kind, cleaned


def custom_field_create(
    *, owner: User, name: str, kind: str, choices: Iterable[str] = ()
) -> CustomField:
    """A new field on the contacts of the owner's numbers, listed after the others."""
    name, kind, cleaned = custom_field_clean(
        owner=owner, name=name, kind=kind, choices=choices, instance=None
    )
    existing = CustomField.objects.filter(owner=owner)
    if existing.count() >= MAX_FIELDS:
        raise ValidationError(
            _("You can have at most %(n)d custom fields.") % {"n": MAX_FIELDS}, "limit_reached"
        )
    last = existing.order_by("-position").values_list("position", flat=True).first()
    try:
        with transaction.atomic():
            field = CustomField.objects.create(
                owner=owner,
                name=name,
                kind=kind,
                choices=cleaned,
                position=min((last or 0) + 1, 32767),
            )
    except IntegrityError:  # the same name saved at the same moment
        raise field_error(
            "name", _("You already have a field with this name."), "duplicate"
        ) from None
    logger.info("custom field created id=%s owner=%s kind=%s", field.pk, owner.pk, kind)
    return field


def custom_field_save(
    *, field: CustomField, name: str, kind: str, choices: Iterable[str]
) -> CustomField:
    """Rename a field, change its type or choices (values already stored are kept as they
    are: a value that no longer fits is shown and refused only when next edited)."""
    field.name, field.kind, field.choices = custom_field_clean(
        owner=field.owner, name=name, kind=kind, choices=choices, instance=field
    )
    field.save(update_fields=["name", "kind", "choices"])
    return field


def custom_field_move(*, field: CustomField, position: int) -> CustomField:
    """Where the field is listed among the owner's (lowest first)."""
    field.position = max(0, min(position, 32767))
    field.save(update_fields=["position"])
    return field


def custom_field_delete(*, field: CustomField) -> None:
    """The field and every contact's value of it."""
    logger.info("custom field deleted id=%s owner=%s", field.pk, field.owner_id)
    field.delete()


# --- Values --------------------------------------------------------------------------------


def custom_value_clean(field: CustomField, raw: str) -> str:
    """``raw`` as stored for ``field``; ``""`` clears the value. A ValidationError names
    the field (``custom_fields.<name>``) and says what is expected."""
    key = value_key(field)
    text = _text(str(raw), key, MAX_VALUE_LENGTH)
    if not text:
        return ""
    if field.kind == CustomField.Kind.NUMBER:
        # "1,5" as typed in Brazil and "1.5" are the same number; "1.000,5" is not accepted.
        candidate = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
        try:
            number = Decimal(candidate)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or len(candidate) > 40:
            raise field_error(key, _("%(field)s must be a number.") % {"field": field.name})
        text = format(number.normalize(), "f")
    elif field.kind == CustomField.Kind.DATE:
        try:
            text = date.fromisoformat(text).isoformat()
        except ValueError:
            raise field_error(
                key,
                _("%(field)s must be a date written YYYY-MM-DD.") % {"field": field.name},
            ) from None
    elif field.kind == CustomField.Kind.CHOICE:
        by_lower = {c.lower(): c for c in field.choices}
        if text.lower() not in by_lower:
            raise field_error(
                key,
                _("%(field)s must be one of: %(choices)s.")
                % {"field": field.name, "choices": ", ".join(field.choices)},
                "invalid_choice",
            )
        text = by_lower[text.lower()]
    return text


def custom_values_clean(values: Mapping[CustomField, str]) -> dict[CustomField, str]:
    """Every value checked; one ValidationError naming each refused field."""
    cleaned: dict[CustomField, str] = {}
    errors: dict[str, list[ValidationError]] = {}
    for field, raw in values.items():
        try:
            cleaned[field] = custom_value_clean(field, raw)
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


def contact_values_write(*, contact: Contact, values: Mapping[CustomField, str]) -> bool:
    """Store already checked values (``""`` deletes one); whether anything changed."""
    stored = {v.field_id: v for v in ContactFieldValue.objects.filter(contact=contact)}
    changed = False
    for field, value in values.items():
        current = stored.get(field.pk)
        if not value:
            if current is not None:
                current.delete()
                changed = True
        elif current is None:
            ContactFieldValue.objects.create(contact=contact, field=field, value=value)
            changed = True
        elif current.value != value:
            current.value = value
            current.save(update_fields=["value"])
            changed = True
    return changed


def contact_details_update(
    *,
    contact: Contact,
    saved_name: str | None = None,
    notes: str | None = None,
    values: Mapping[CustomField, str] | None = None,
) -> Contact:
    """Edit a contact from the contacts page or the API: its name, notes and custom field
    values (only the ones given), all checked before anything is saved."""
    cleaned = custom_values_clean(values or {})
    if saved_name is not None:
        saved_name = _text(saved_name, "name", 128)
    if notes is not None:
        reason = unstorable(notes)
        if reason is not None:
            raise field_error("notes", _(reason))
    with transaction.atomic():
        contact_update(contact=contact, saved_name=saved_name, notes=notes)
        if contact_values_write(contact=contact, values=cleaned):
            contact.save(update_fields=["updated_at"])
    return contact
