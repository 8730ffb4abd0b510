"""REST API for message templates (mounted under /api/whatsapp/ by vbcrm/api.py).

A template is personal (its owner's alone) or shared on a number by that number's owner
with its agents, who use it but cannot change it. Reads through the selectors (a template
someone may not use answers 404), writes through ``conversations.services``; unknown
variables are refused when a template is saved (400 on ``text``), never when it is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Header, Path, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from conversations import selectors, services
from conversations.api_schemas import MAX_ID, MessageOut
from conversations.files import template_file_response
from conversations.models import Conversation, QuickReply
from conversations.serializers import message_data
from vbcrm.api_base import (
    FILE_ANSWER,
    ApiError,
    SafeStr,
    errors,
    field_errors,
    not_found,
    request_user,
)
from vbcrm.errors import error_items
from vbcrm.types import User
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_owned_list

logger = logging.getLogger(__name__)

router = Router(tags=["templates"])

TemplateId = Path(..., ge=1, le=MAX_ID, examples=[1])
ConversationId = Path(..., ge=1, le=MAX_ID, examples=[1])


class TemplateFileOut(Schema):
    name: str
    size: int | None
    mime_type: str
    url: str = Field(description="Download it here (the same authentication).")


class TemplateOut(Schema):
    id: int
    shortcut: str = Field(description="Typed after / in the inbox's message box.")
    text: str = Field(description="With its variables, e.g. {{nome}}, as written.")
    number: int | None = Field(description="The number it is shared on; null: personal.")
    can_edit: bool = Field(description="False for a shared one you only use.")
    file: TemplateFileOut | None


class TemplateIn(Schema):
    shortcut: SafeStr = Field(max_length=60, examples=["hello"])
    text: SafeStr = Field("", max_length=8192, examples=["{{saudacao}}, {{nome}}!"])
    number: int | None = Field(
        None, ge=1, le=MAX_ID, description="Share it on this number (one you own)."
    )


class TemplateUpdateIn(Schema):
    shortcut: SafeStr = Field(max_length=60)
    text: SafeStr = Field("", max_length=8192)


class TemplateRenderOut(Schema):
    text: str = Field(description="The text with the conversation's values filled in.")
    file: TemplateFileOut | None


class TemplateSendIn(Schema):
    text: SafeStr | None = Field(
        None, max_length=8192, description="What to send; the filled template if omitted."
    )


def _file_out(template: QuickReply) -> dict[str, Any] | None:
    if not template.file:
        return None
    return {
        "name": template.file_name,
        "size": template.file_size,
        "mime_type": template.mime_type,
        "url": reverse("api:template_file", args=[template.pk]),
    }


def _template_out(template: QuickReply, user: User) -> dict[str, Any]:
    return {
        "id": template.pk,
        "shortcut": template.shortcut,
        "text": template.text,
        "number": template.session_id,
        "can_edit": selectors.template_can_edit(user=user, template=template),
        "file": _file_out(template),
    }


def _refused(exc: ValidationError) -> ApiError:
    field, code, message = error_items(exc)[0]
    return field_errors(field or "text", message, code, status=409 if code == "duplicate" else 400)


def _editable(request: HttpRequest, template_id: int) -> QuickReply:
    user = request_user(request)
    try:
        template = selectors.template_get(user=user, template_id=template_id)
    except QuickReply.DoesNotExist:
        raise not_found() from None
    if not selectors.template_can_edit(user=user, template=template):
        raise ApiError(403, "forbidden", _("Only the number's owner can change this template."))
    return template


def _in_conversation(
    request: HttpRequest, conversation_id: int, template_id: int
) -> tuple[Conversation, QuickReply]:
    user = request_user(request)
    try:
        conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
        template = selectors.template_for_conversation(
            user=user, conversation=conversation, template_id=template_id
        )
    except (Conversation.DoesNotExist, QuickReply.DoesNotExist):
        raise not_found() from None
    return conversation, template


@router.get(
    "/templates", response={200: list[TemplateOut], **errors(401)}, summary="List templates"
)
def template_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Your personal templates and those shared on the numbers you own or work."""
    user = request_user(request)
    return [_template_out(t, user) for t in selectors.template_list(user=user)]


@router.post(
    "/templates",
    response={201: TemplateOut, **errors(400, 401, 403, 409)},
    summary="Make a template",
)
def template_create(request: HttpRequest, payload: TemplateIn) -> Status:
    """Personal, or shared on ``number`` (403 unless you own it). 400 on ``text`` for an
    unknown variable; 409 when the shortcut is taken."""
    user = request_user(request)
    session = None
    if payload.number is not None:
        try:
            session = session_owned_list(user=user).get(pk=payload.number)
        except WhatsAppSession.DoesNotExist:
            raise field_errors(
                "number",
                _("Only the number's owner can share templates on it."),
                "forbidden",
                status=403,
            ) from None
    try:
        template = services.quick_reply_create(
            owner=user, shortcut=payload.shortcut, text=payload.text, session=session
        )
    except ValidationError as exc:
        raise _refused(exc) from None
    return Status(201, _template_out(template, user))


@router.put(
    "/templates/{template_id}",
    response={200: TemplateOut, **errors(400, 401, 403, 404, 409)},
    summary="Change a template",
)
def template_update(
    request: HttpRequest, payload: TemplateUpdateIn, template_id: int = TemplateId
) -> dict[str, Any]:
    template = _editable(request, template_id)
    try:
        services.quick_reply_update(
            quick_reply=template, shortcut=payload.shortcut, text=payload.text
        )
    except ValidationError as exc:
        raise _refused(exc) from None
    return _template_out(template, request_user(request))


@router.delete(
    "/templates/{template_id}",
    response={204: None, **errors(401, 403, 404)},
    summary="Delete a template",
)
def template_delete(request: HttpRequest, template_id: int = TemplateId) -> Status:
    services.quick_reply_delete(quick_reply=_editable(request, template_id))
    return Status(204, None)


@router.post(
    "/templates/{template_id}/file",
    response={200: TemplateOut, **errors(400, 401, 403, 404, 413)},
    summary="Attach a file to a template",
)
def template_file_set(
    request: HttpRequest, template_id: int = TemplateId, file: UploadedFile = File(...)
) -> dict[str, Any]:
    """multipart/form-data with ``file``; it replaces the one the template had."""
    template = _editable(request, template_id)
    services.quick_reply_update(
        quick_reply=template, shortcut=template.shortcut, text=template.text, upload=file
    )
    return _template_out(template, request_user(request))


@router.delete(
    "/templates/{template_id}/file",
    response={200: TemplateOut, **errors(400, 401, 403, 404)},
    summary="Remove a template's file",
)
def template_file_remove(request: HttpRequest, template_id: int = TemplateId) -> dict[str, Any]:
    """400 when the template has no text to stand without it."""
    template = _editable(request, template_id)
    services.quick_reply_update(
        quick_reply=template, shortcut=template.shortcut, text=template.text, remove_file=True
    )
    return _template_out(template, request_user(request))


@router.get(
    "/templates/{template_id}/file",
    response=errors(401, 404),
    url_name="template_file",
    summary="Download a template's file",
    openapi_extra=FILE_ANSWER,
)
def template_file(request: HttpRequest, template_id: int = TemplateId) -> FileResponse:
    try:
        template = selectors.template_get(user=request_user(request), template_id=template_id)
    except QuickReply.DoesNotExist:
        raise not_found() from None
    response = template_file_response(template, as_attachment=True)
    if response is None:
        raise not_found()
    return response


@router.get(
    "/conversations/{conversation_id}/templates/{template_id}/render",
    response={200: TemplateRenderOut, **errors(401, 404)},
    summary="Preview a template in a conversation",
)
def template_render(
    request: HttpRequest,
    conversation_id: int = ConversationId,
    template_id: int = TemplateId,
) -> dict[str, Any]:
    """The template's text with this conversation's values (contact, number, greeting by
    the number's clock, protocol) and yours (``{{agente}}``), as it would be sent."""
    conversation, template = _in_conversation(request, conversation_id, template_id)
    text = services.template_render(
        template=template, conversation=conversation, agent=request_user(request)
    )
    return {"text": text, "file": _file_out(template)}


@router.post(
    "/conversations/{conversation_id}/templates/{template_id}/send",
    response={201: MessageOut, **errors(400, 401, 403, 404, 409, 413, 429)},
    summary="Send a template",
)
def template_send(
    request: HttpRequest,
    payload: TemplateSendIn,
    conversation_id: int = ConversationId,
    template_id: int = TemplateId,
    idempotency_key: SafeStr | None = Header(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        description="As for sending: a retry with the same key sends nothing twice.",
    ),
) -> Status:
    """The template (its file, if any, with the text as its caption), through the same
    send path, rate limit and rules as any reply."""
    user = request_user(request)
    conversation, template = _in_conversation(request, conversation_id, template_id)
    text = payload.text
    if text is None:
        text = services.template_render(template=template, conversation=conversation, agent=user)
    try:
        message = services.template_send(
            user=user,
            conversation=conversation,
            template=template,
            text=text,
            client_key=idempotency_key or "",
        )
    except ValidationError as exc:
        code = error_items(exc)[0][1]
        if code == "rate_limited":
            assert exc.params is not None
            raise ApiError(
                429,
                "rate_limited",
                exc.messages[0],
                headers={"Retry-After": str(exc.params["retry_after"])},
            ) from None
        raise
    data = message_data(message)
    if data["media_url"]:
        data["media_url"] = reverse("api:message_media", args=[message.pk])
    return Status(201, data)
