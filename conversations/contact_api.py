"""REST API for contacts (mounted under /api/whatsapp/ by vbcrm/api.py): list and search,
read one with its custom fields and conversations, edit its name, notes and custom fields.

The access rule is the pages': the contacts of the numbers the caller owns or works;
anybody else's answer 404, as if they did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema
from pydantic import Field

from conversations import contact_selectors as selectors
from conversations.api_schemas import MAX_ID, ConversationStatus
from conversations.models import Contact, CustomField
from conversations.services import contacts
from vbcrm.api_base import SafeStr, errors, field_errors, not_found, request_user

router = Router(tags=["contacts"])

MAX_PAGE = 100
ContactId = Path(..., ge=1, le=MAX_ID, examples=[1])


# --- Shapes --------------------------------------------------------------------------------


class ContactSummaryOut(Schema):
    id: int
    session_id: int = Field(description="The number the contact writes to.")
    name: str = Field(description="The name shown: ours, else their WhatsApp name, else phone.")
    phone: str
    last_message_at: datetime | None


class ContactPage(Schema):
    items: list[ContactSummaryOut]
    next_page: int | None = Field(description="Pass as ?page= for the next page; null at the end.")


class CustomValueOut(Schema):
    id: int
    name: str
    type: Literal["text", "number", "date", "choice"]
    choices: list[str]
    value: str = Field(description='The value as stored; "" when it has none.')


class ContactConversationOut(Schema):
    id: int
    session_id: int
    status: ConversationStatus
    last_message_at: datetime | None


class ContactDetailOut(Schema):
    id: int
    session_id: int
    name: str
    saved_name: str = Field(description="The name the team keeps for the contact.")
    push_name: str = Field(description="The name the contact gave WhatsApp.")
    phone: str
    notes: str
    custom_fields: list[CustomValueOut]
    conversations: list[ContactConversationOut] = Field(
        description="Its conversations on every number the caller works (same phone)."
    )


class ContactUpdateIn(Schema):
    name: SafeStr | None = Field(None, max_length=128, description='"" clears our name.')
    notes: SafeStr | None = Field(None, max_length=5000)
    custom_fields: dict[SafeStr, SafeStr | int | float] | None = Field(
        None,
        description='Values by field name; "" clears one. Numbers as 12.5, dates as '
        "YYYY-MM-DD, choices as one of the field's choices.",
        examples=[{"Plan": "Gold", "Birthday": "1990-04-01"}],
    )


# --- Helpers -------------------------------------------------------------------------------


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    try:
        return selectors.contact_get(user=request_user(request), contact_id=contact_id)
    except Contact.DoesNotExist:
        raise not_found() from None


def _contact_out(request: HttpRequest, contact: Contact) -> dict[str, Any]:
    fields = selectors.contact_fields(contact=contact)
    conversations = selectors.contact_conversations(user=request_user(request), contact=contact)
    return {
        "id": contact.pk,
        "session_id": contact.session_id,
        "name": contact.display_name,
        "saved_name": contact.saved_name,
        "push_name": contact.push_name,
        "phone": contact.phone,
        "notes": contact.notes,
        "custom_fields": [
            {"id": f.pk, "name": f.name, "type": f.kind, "choices": f.choices, "value": value}
            for f, value in fields
        ],
        "conversations": [
            {
                "id": c.pk,
                "session_id": c.session_id,
                "status": c.status,
                "last_message_at": c.last_message_at,
            }
            for c in conversations
        ],
    }


# --- Endpoints -----------------------------------------------------------------------------


@router.get(
    "/contacts",
    response={200: ContactPage, **errors(400, 401)},
    summary="List contacts",
)
def contact_list(
    request: HttpRequest,
    search: SafeStr = Query("", max_length=200, description="Name or phone."),
    number: int | None = Query(None, ge=1, le=MAX_ID, description="Only this number's."),
    sort: Literal["recent", "name"] = Query("recent", description="Latest message, or name."),
    page: int = Query(1, ge=1, le=10_000),
    limit: int = Query(50, ge=1, description=f"Page size, at most {MAX_PAGE}."),
) -> dict[str, Any]:
    """The people of the numbers the caller owns or works (groups left out)."""
    limit = min(limit, MAX_PAGE)
    rows = selectors.contact_list(
        user=request_user(request),
        filters=selectors.ContactFilters(search=search, session_id=number, sort=sort),
        offset=(page - 1) * limit,
        limit=limit + 1,
    )
    return {
        "items": [
            {
                "id": c.pk,
                "session_id": c.session_id,
                "name": c.display_name,
                "phone": c.phone,
                "last_message_at": c.last_message_at,  # type: ignore[attr-defined]
            }
            for c in rows[:limit]
        ],
        "next_page": page + 1 if len(rows) > limit else None,
    }


@router.get(
    "/contacts/{contact_id}",
    response={200: ContactDetailOut, **errors(401, 404)},
    summary="Get a contact",
)
def contact_detail(request: HttpRequest, contact_id: int = ContactId) -> dict[str, Any]:
    return _contact_out(request, _contact(request, contact_id))


@router.patch(
    "/contacts/{contact_id}",
    response={200: ContactDetailOut, **errors(400, 401, 403, 404)},
    summary="Edit a contact",
)
def contact_update(
    request: HttpRequest, payload: ContactUpdateIn, contact_id: int = ContactId
) -> dict[str, Any]:
    """Change the name the team keeps, the notes and custom field values; only what is
    sent. Every value is checked before anything is saved (400 naming each field)."""
    contact = _contact(request, contact_id)
    values: dict[CustomField, str] = {}
    if payload.custom_fields:
        by_name = {f.name.lower(): f for f, _value in selectors.contact_fields(contact=contact)}
        for name, value in payload.custom_fields.items():
            field = by_name.get(name.strip().lower())
            if field is None:
                raise field_errors(
                    f"custom_fields.{name}", _("No custom field has this name."), "unknown_field"
                )
            values[field] = str(value)
    contacts.contact_details_update(
        contact=contact, saved_name=payload.name, notes=payload.notes, values=values
    )
    return _contact_out(request, contact)
