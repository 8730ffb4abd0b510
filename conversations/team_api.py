"""REST API for the team's tools: tags (list, make, set on a conversation or a contact)
and private notes. Mounted beside ``conversations.api`` under /api/whatsapp/.

Same rules: reads through the selectors (a conversation of a number the caller does not
work answers 404), writes through the services. A note has its own endpoint and its own
direction (``NOTA``): nothing sent to ``/send`` becomes a note, and no note is ever sent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from conversations import selectors, services
from conversations.api_schemas import MAX_ID, MessageOut
from conversations.models import Contact, Conversation, Tag
from conversations.serializers import message_data, tag_data
from vbcrm.api_base import SafeStr, errors, field_errors, not_found, request_user
from vbcrm.errors import error_items
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_get

logger = logging.getLogger(__name__)

router = Router(tags=["tags and notes"])

ConversationId = Path(..., ge=1, le=MAX_ID, examples=[1])
ContactId = Path(..., ge=1, le=MAX_ID, examples=[1])


class TagOut(Schema):
    id: int
    name: str
    color: str = Field(description="One of the palette's names: " + ", ".join(Tag.Color.values))


class OwnedTagOut(TagOut):
    owner_id: int = Field(description="Whose tag: the owner of the numbers it is used on.")


class TagIn(Schema):
    number: int = Field(ge=1, le=MAX_ID, description="A number you work: its owner's tag.")
    name: SafeStr = Field(max_length=100)
    color: SafeStr = Field("", max_length=20, description="Gray if not given.")


class TagsIn(Schema):
    tag_ids: list[int] = Field(
        max_length=100, description="The tags it carries from now on (its owner's)."
    )


class TagsOut(Schema):
    tags: list[TagOut]


class NoteIn(Schema):
    text: SafeStr = Field(max_length=32 * 1024)


def _raise(exc: ValidationError) -> Exception:
    field, code, message = error_items(exc)[0]
    return field_errors(field or "tag_ids", message, code)


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    try:
        return selectors.conversation_get(
            user=request_user(request), conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise not_found() from None


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    try:
        return selectors.contact_get(user=request_user(request), contact_id=contact_id)
    except Contact.DoesNotExist:
        raise not_found() from None


@router.get("/tags", response={200: list[OwnedTagOut], **errors(400, 401)}, summary="List tags")
def tag_list(
    request: HttpRequest,
    number: int | None = Query(None, ge=1, le=MAX_ID, description="Only this number's owner's."),
) -> list[dict[str, Any]]:
    """The tags you may use: those of the owners of the numbers you work."""
    user = request_user(request)
    session = None
    if number is not None:
        try:
            session = session_get(user=user, session_id=number)
        except WhatsAppSession.DoesNotExist:
            raise field_errors("number", _("No such number."), "not_found") from None
    return [
        {**tag_data(t), "owner_id": t.owner_id}
        for t in selectors.tag_list(user=user, session=session)
    ]


@router.post("/tags", response={201: OwnedTagOut, **errors(400, 401, 422)}, summary="Make a tag")
def tag_create(request: HttpRequest, payload: TagIn) -> Status:
    """A tag of the number's owner (an existing one of that name answers as it is)."""
    try:
        session = session_get(user=request_user(request), session_id=payload.number)
    except WhatsAppSession.DoesNotExist:
        raise field_errors("number", _("No such number."), "not_found") from None
    try:
        tag = services.tag_create(session=session, name=payload.name, color=payload.color)
    except ValidationError as exc:
        raise _raise(exc) from None
    return Status(201, {**tag_data(tag), "owner_id": tag.owner_id})


@router.get(
    "/conversations/{conversation_id}/tags",
    response={200: TagsOut, **errors(401, 404)},
    summary="A conversation's tags",
)
def conversation_tags(request: HttpRequest, conversation_id: int = ConversationId) -> dict:
    conversation = _conversation(request, conversation_id)
    return {"tags": [tag_data(t) for t in conversation.tags.order_by("name")]}


@router.put(
    "/conversations/{conversation_id}/tags",
    response={200: TagsOut, **errors(400, 401, 404, 422)},
    summary="Set a conversation's tags",
)
def conversation_tags_set(
    request: HttpRequest, payload: TagsIn, conversation_id: int = ConversationId
) -> dict:
    conversation = _conversation(request, conversation_id)
    try:
        tags = services.conversation_tags_set(conversation=conversation, tag_ids=payload.tag_ids)
    except ValidationError as exc:
        raise _raise(exc) from None
    return {"tags": [tag_data(t) for t in tags]}


@router.get(
    "/contacts/{contact_id}/tags",
    response={200: TagsOut, **errors(401, 404)},
    summary="A contact's tags",
)
def contact_tags(request: HttpRequest, contact_id: int = ContactId) -> dict:
    contact = _contact(request, contact_id)
    return {"tags": [tag_data(t) for t in contact.tags.order_by("name")]}


@router.put(
    "/contacts/{contact_id}/tags",
    response={200: TagsOut, **errors(400, 401, 404, 422)},
    summary="Set a contact's tags",
)
def contact_tags_set(request: HttpRequest, payload: TagsIn, contact_id: int = ContactId) -> dict:
    contact = _contact(request, contact_id)
    try:
        tags = services.contact_tags_set(contact=contact, tag_ids=payload.tag_ids)
    except ValidationError as exc:
        raise _raise(exc) from None
    return {"tags": [tag_data(t) for t in tags]}


@router.post(
    "/conversations/{conversation_id}/notes",
    response={201: MessageOut, **errors(400, 401, 404, 422)},
    summary="Write a private note",
)
def conversation_note(
    request: HttpRequest, payload: NoteIn, conversation_id: int = ConversationId
) -> Status:
    """A note in the thread for the team (direction ``NOTA``): never sent to WhatsApp.
    ``@username`` of someone who works the number notifies them."""
    conversation = _conversation(request, conversation_id)
    try:
        note = services.note_add(
            user=request_user(request), conversation=conversation, text=payload.text
        )
    except ValidationError as exc:
        field, code, message = error_items(exc)[0]
        raise field_errors(field or "text", message, code) from None
    return Status(201, message_data(note))
