"""Reads for the contacts page and API, with the access rule of ``whatsapp.selectors``:
a user sees the contacts of the numbers they own or work, nobody else's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Lower, NullIf

from conversations.models import Contact, ContactFieldValue, Conversation, CustomField
from vbcrm.types import AnyUser
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import visible_session_ids

SORTS = ("recent", "name")


@dataclass(frozen=True)
class ContactFilters:
    search: str = ""
    session_id: int | None = None
    tag_id: int | None = None
    sort: str = "recent"  # recent: latest message first; name: A to Z


def contact_queryset(*, user: AnyUser) -> QuerySet[Contact]:
    """The people (not groups) of the numbers ``user`` sees."""
    return Contact.objects.filter(session_id__in=visible_session_ids(user), is_group=False)


def contact_list(
    *, user: AnyUser, filters: ContactFilters | None = None, offset: int = 0, limit: int = 50
) -> list[Contact]:
    """A page of contacts, each with ``last_message_at`` (None before any message) and its
    number. Search matches the name we keep, the WhatsApp name, or the phone's digits."""
    f = filters or ContactFilters()
    last_message = Conversation.objects.filter(contact=OuterRef("pk")).values("last_message_at")
    qs = (
        contact_queryset(user=user)
        .select_related("session")
        .annotate(last_message_at=Subquery(last_message[:1]))
    )
    if f.session_id:
        qs = qs.filter(session_id=f.session_id)
    if f.tag_id:
        qs = qs.filter(tags__id=f.tag_id)
    term = " ".join(f.search.split())
    if term:
        match = Q(saved_name__icontains=term) | Q(push_name__icontains=term)
        digits = re.sub(r"\D", "", term)
        if digits and re.fullmatch(r"[\d\s\-().+]+", term):
            match |= Q(phone__contains=digits)
        qs = qs.filter(match)
    if f.sort == "name":
        name = Coalesce(NullIf("saved_name", Value("")), NullIf("push_name", Value("")), "phone")
        qs = qs.order_by(Lower(name), "pk")
    else:
        qs = qs.order_by(F("last_message_at").desc(nulls_last=True), "-pk")
    return list(qs.prefetch_related("tags")[offset : offset + limit])


def contact_get(*, user: AnyUser, contact_id: int) -> Contact:
    """A contact ``user`` may see, with its number and the number's owner;
    ``Contact.DoesNotExist`` otherwise (never reveal it exists)."""
    return contact_queryset(user=user).select_related("session__owner").get(pk=contact_id)


def contact_fields(*, contact: Contact) -> list[tuple[CustomField, str]]:
    """The custom fields of the contact's number's owner, each with the contact's value
    (``""`` when it has none)."""
    values = dict(
        ContactFieldValue.objects.filter(contact=contact).values_list("field_id", "value")
    )
    fields = CustomField.objects.filter(owner_id=contact.session.owner_id)
    return [(field, values.get(field.pk, "")) for field in fields]


def custom_field_list(*, owner_id: int) -> list[CustomField]:
    return list(CustomField.objects.filter(owner_id=owner_id))


def custom_field_get(*, owner_id: int, field_id: int) -> CustomField:
    """One of the owner's fields; ``CustomField.DoesNotExist`` for anyone else's."""
    return CustomField.objects.get(pk=field_id, owner_id=owner_id)


def contact_conversations(*, user: AnyUser, contact: Contact) -> list[Conversation]:
    """The contact's conversations on every number ``user`` sees: a person who wrote to
    two numbers is two contacts with one phone."""
    qs = Conversation.objects.filter(session_id__in=visible_session_ids(user))
    if contact.phone:
        qs = qs.filter(contact__phone=contact.phone, contact__is_group=False)
    else:
        qs = qs.filter(contact=contact)
    return list(qs.select_related("session", "assigned_to").order_by("-last_message_at"))


def contacts_for_export(*, session: WhatsAppSession) -> QuerySet[Contact]:
    """Every person of one number with a phone, by phone, with their field values."""
    return (
        Contact.objects.filter(session=session, is_group=False)
        .exclude(phone="")
        .order_by("phone", "pk")
        .prefetch_related(
            "tags",
            Prefetch(
                "field_values", queryset=ContactFieldValue.objects.only("contact", "field", "value")
            ),
        )
    )
