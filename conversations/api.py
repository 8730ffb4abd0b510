"""REST API for conversations and messages (mounted under /api/whatsapp/ by vbcrm/api.py).

Reads go through ``conversations.selectors`` (the access rule: the number's
owner or one of its agents; anybody else gets 404, as if the row did not
exist) and writes through ``conversations.services``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Header, Path, Query, Router, Status
from pydantic import ValidationError as PydanticValidationError

from conversations import selectors, services
from conversations.api_schemas import (
    _SEND_BODY_SCHEMA,
    _SEND_MULTIPART_SCHEMA,
    _START_BODY_SCHEMA,
    _START_MULTIPART_SCHEMA,
    MAX_ID,
    AssignIn,
    ConversationOut,
    ConversationPage,
    ConversationStatus,
    MessageOut,
    MessagePage,
    ReadOut,
    SendIn,
    StartIn,
    StartOut,
)
from conversations.files import media_response
from conversations.models import Conversation, Message
from conversations.serializers import conversation_data, message_data
from vbcrm.api_base import (
    FILE_ANSWER,
    ApiError,
    SafeStr,
    errors,
    field_errors,
    not_found,
    request_user,
)
from vbcrm.errors import error_items, first_error
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_get, session_member_get

logger = logging.getLogger(__name__)

router = Router(tags=["conversations"])

MAX_PAGE = 100
ConversationId = Path(..., ge=1, le=MAX_ID, examples=[1])

# --- Helpers -----------------------------------------------------------------------------


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    try:
        return selectors.conversation_get(
            user=request_user(request), conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise not_found() from None


def _message_out(message: Message) -> dict[str, Any]:
    data = message_data(message)
    if data["media_url"]:
        # The page's media view needs a login session; this one also takes a token.
        data["media_url"] = reverse("api:message_media", args=[message.pk])
    return data


def _encode_cursor(conversation: Conversation) -> str:
    raw = json.dumps([conversation.last_message_at.isoformat(), conversation.pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, pk = json.loads(raw)
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None or type(pk) is not int or not 1 <= pk <= MAX_ID:
            raise ValueError(cursor)
        return parsed, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise field_errors("cursor", _("This cursor is not one we gave out.")) from None


def _send_error(exc: ValidationError) -> ApiError | ValidationError:
    """A refused reply in the API's shape: 429 with Retry-After past the send rate, one
    answer for any quote but a message of this conversation, the rest to the handlers."""
    code, message = first_error(exc)
    if code == "rate_limited":
        assert exc.params is not None  # send_retry_after's refusal carries retry_after
        return ApiError(
            429, "rate_limited", message, headers={"Retry-After": str(exc.params["retry_after"])}
        )
    if any(field == "reply_to_id" for field, _code, _message in error_items(exc)):
        return field_errors("reply_to_id", _("No such message in this conversation."))
    return exc


def _send_input(request: HttpRequest, schema: type[SendIn] = SendIn) -> tuple[Any, Any]:
    """The message from a JSON or a multipart body."""
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        data: Any = {k: v for k, v in request.POST.items() if v != "" or k == "text"}
        upload = request.FILES.get("file")
    elif content_type in ("application/json", "") or content_type.endswith("+json"):
        upload = None
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: nested too deep
            raise ApiError(400, "bad_request", _("The body is not valid JSON.")) from None
        if not isinstance(data, dict):
            raise field_errors("body", _("Send a JSON object."))
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            _("Send application/json, or multipart/form-data with a file."),
        )
    try:
        return schema.model_validate(data), upload
    except PydanticValidationError as exc:
        detail = [
            {
                "field": ".".join(str(p) for p in err["loc"]) or "body",
                "message": err["msg"],
                "code": err["type"],
            }
            for err in exc.errors(include_url=False)
        ]
        raise ApiError(400, "invalid", detail) from None


def _message_fields(payload: SendIn, upload: Any) -> dict[str, Any]:
    """What ``message_send`` takes besides the conversation, checked at the door."""
    if upload is not None and "\x00" in f"{upload.name}{upload.content_type}":
        raise field_errors("file", _("The file's name or type is not valid text."))
    kind = (payload.kind or "").strip()
    if kind and kind not in Message.Kind.values:
        raise field_errors("kind", _("Unknown kind of message."), "unknown_kind", status=422)
    for name, value in (("location", payload.location), ("contact", payload.contact)):
        if kind == name and value is None:
            raise field_errors(name, _("This field is required for this kind."), "required")
    if upload is None and kind not in ("", Message.Kind.TEXT, "location", "contact"):
        raise field_errors("file", _("Attach a file to send this kind."), "required")
    location = contact = None
    if payload.location is not None:
        location = services.Location(**payload.location.model_dump())
    if payload.contact is not None:
        contact = services.ContactCard(**payload.contact.model_dump())
    return {
        "text": payload.text,
        "upload": upload,
        "kind": kind if upload is not None and kind else None,
        "location": location,
        "contact": contact,
    }


def _start_error(exc: ValidationError) -> ApiError | ValidationError:
    """A refused start: 409 when the number is not connected, 422 for a phone that is
    not on WhatsApp, 503 when WhatsApp did not answer the lookup, else as a send."""
    code, message = first_error(exc)
    if code == "not_connected":
        return ApiError(409, code, message)
    if code == "not_on_whatsapp":
        return field_errors("phone", message, code, status=422)
    if code == "lookup_failed":
        return ApiError(503, code, message)
    if code == "not_found":
        return field_errors("session_id", _("No such number."), code, status=404)
    return _send_error(exc)


# --- Endpoints ----------------------------------------------------------------------------


@router.post(
    "/conversations",
    response={201: StartOut, **errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)},
    summary="Start a conversation",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _START_BODY_SCHEMA},
                "multipart/form-data": {"schema": _START_MULTIPART_SCHEMA},
            },
        }
    },
)
def conversation_start(
    request: HttpRequest,
    idempotency_key: SafeStr | None = Header(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        description="As for sending: a retry with the same key sends nothing twice.",
    ),
) -> Status:
    """Write first to a customer: the phone is checked on WhatsApp through the number
    (404 ``not_found`` for a number the caller does not work, 409 ``not_connected``, 422
    ``not_on_whatsapp``, before anything is stored), then the conversation (the existing
    one with that contact on that number, or a new one) gets the message."""
    user = request_user(request)
    payload, upload = _send_input(request, StartIn)
    fields = _message_fields(payload, upload)
    try:
        session = session_get(user=user, session_id=payload.session_id)
    except WhatsAppSession.DoesNotExist:
        raise field_errors("session_id", _("No such number."), "not_found", status=404) from None
    try:
        conversation, message = services.conversation_start(
            user=user,
            session=session,
            phone=payload.phone,
            client_key=idempotency_key or "",
            **fields,
        )
    except ValidationError as exc:
        raise _start_error(exc) from None
    conversation = selectors.conversation_get(user=user, conversation_id=conversation.pk)
    return Status(
        201, {"conversation": conversation_data(conversation), "message": _message_out(message)}
    )


@router.get(
    "/conversations",
    response={200: ConversationPage, **errors(400, 401)},
    summary="List conversations",
)
def conversation_list(
    request: HttpRequest,
    status: ConversationStatus | None = None,
    number: int | None = Query(None, ge=1, le=MAX_ID, description="Only this number's."),
    assigned: Literal["mine", "unassigned"] | None = None,
    search: SafeStr = Query("", max_length=200, description="Contact name or phone, or text."),
    tag: int | None = Query(None, ge=1, le=MAX_ID, description="Tagged so (or its contact)."),
    cursor: SafeStr | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, description=f"Page size, at most {MAX_PAGE}."),
) -> dict[str, Any]:
    """The caller's conversations, latest activity first (numbers they own or work)."""
    limit = min(limit, MAX_PAGE)
    filters = selectors.ConversationFilters(
        scope=assigned or "all",
        status=status or "",
        session_id=number,
        search=search.strip(),
        tag_id=tag,
    )
    rows = selectors.conversation_list(
        user=request_user(request),
        filters=filters,
        before=_decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
        tags=False,
        contact_only=True,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [conversation_data(c) for c in page],
        "next_cursor": _encode_cursor(page[-1]) if more else None,
    }


@router.get(
    "/conversations/{conversation_id}",
    response={200: ConversationOut, **errors(401, 404)},
    summary="Get a conversation",
)
def conversation_detail(request: HttpRequest, conversation_id: int = ConversationId) -> dict:
    return conversation_data(_conversation(request, conversation_id))


@router.get(
    "/conversations/{conversation_id}/messages",
    response={200: MessagePage, **errors(400, 401, 404)},
    summary="List a conversation's messages",
)
def conversation_messages(
    request: HttpRequest,
    conversation_id: int = ConversationId,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="Messages older than this id."),
    limit: int = Query(50, ge=1, description=f"Page size, at most {MAX_PAGE}."),
) -> dict[str, Any]:
    """Newest first; page back in time with ``before`` (the ``next_before`` of a page)."""
    try:
        # Only the access check: the answer carries no field of the conversation itself.
        conversation = selectors.conversation_access(
            user=request_user(request), conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise not_found() from None
    limit = min(limit, MAX_PAGE)
    # The selector returns oldest first; one extra row tells whether older ones remain.
    # Messages answer their sender's and quoted message's ids only: nothing to join.
    rows = selectors.message_list(
        conversation=conversation, before_id=before, limit=limit + 1, related=False
    )
    rows.reverse()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [_message_out(m) for m in page],
        "next_before": page[-1].pk if more else None,
    }


@router.put(
    "/conversations/{conversation_id}/read",
    response={200: ReadOut, **errors(401, 403, 404)},
    summary="Mark a conversation read",
)
def conversation_read(request: HttpRequest, conversation_id: int = ConversationId) -> dict:
    """Clears the unread count; the worker sends WhatsApp's read receipts."""
    conversation = _conversation(request, conversation_id)
    marked = services.conversation_mark_read(conversation=conversation, user=request_user(request))
    return {"conversation": conversation_data(conversation), "marked": marked}


@router.post(
    "/conversations/{conversation_id}/send",
    response={201: MessageOut, **errors(400, 401, 403, 404, 409, 413, 415, 422, 429)},
    summary="Send a message",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _SEND_BODY_SCHEMA},
                "multipart/form-data": {"schema": _SEND_MULTIPART_SCHEMA},
            },
        }
    },
)
def conversation_send(
    request: HttpRequest,
    conversation_id: int = ConversationId,
    idempotency_key: SafeStr | None = Header(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        description="Any unique string: a retried request with the same key returns the "
        "message already queued instead of sending twice.",
    ),
) -> Status:
    """Queue a reply (answered with the ``pending`` message); the worker sends it."""
    user = request_user(request)
    conversation = _conversation(request, conversation_id)
    payload, upload = _send_input(request)
    try:
        message = services.message_send(
            user=user,
            conversation=conversation,
            reply_to_id=payload.reply_to_id,
            client_key=idempotency_key or "",
            **_message_fields(payload, upload),
        )
    except ValidationError as exc:
        raise _send_error(exc) from None
    # A retry with the same key answers exactly as the first request did.
    return Status(201, _message_out(message))


@router.post(
    "/conversations/{conversation_id}/assign",
    response={200: ConversationOut, **errors(400, 401, 403, 404, 413)},
    summary="Assign a conversation",
)
def conversation_assign(
    request: HttpRequest, payload: AssignIn, conversation_id: int = ConversationId
) -> dict:
    user = request_user(request)
    conversation = _conversation(request, conversation_id)
    assignee = None
    if payload.user_id == "me":
        assignee = user
    elif payload.user_id is not None:
        try:
            assignee = session_member_get(session=conversation.session, user_id=payload.user_id)
        except ObjectDoesNotExist:
            raise field_errors(
                "user_id", _("This user does not work this number's inbox."), "not_agent"
            ) from None
    services.conversation_assign(conversation=conversation, assignee=assignee, by=user)
    return conversation_data(conversation)


@router.post(
    "/conversations/{conversation_id}/close",
    response={200: ConversationOut, **errors(401, 403, 404)},
    summary="Close a conversation",
)
def conversation_close(request: HttpRequest, conversation_id: int = ConversationId) -> dict:
    conversation = _conversation(request, conversation_id)
    services.conversation_set_status(
        conversation=conversation, status=Conversation.Status.CLOSED, by=request_user(request)
    )
    return conversation_data(conversation)


@router.post(
    "/conversations/{conversation_id}/reopen",
    response={200: ConversationOut, **errors(401, 403, 404)},
    summary="Reopen a conversation",
)
def conversation_reopen(request: HttpRequest, conversation_id: int = ConversationId) -> dict:
    conversation = _conversation(request, conversation_id)
    services.conversation_set_status(
        conversation=conversation, status=Conversation.Status.OPEN, by=request_user(request)
    )
    return conversation_data(conversation)


@router.get(
    "/messages/{message_id}/media",
    response=errors(401, 404),
    url_name="message_media",
    summary="Download a message's file",
    openapi_extra=FILE_ANSWER,
)
def message_media(
    request: HttpRequest, message_id: int = Path(..., ge=1, le=MAX_ID, examples=[1])
) -> FileResponse:
    try:
        message = selectors.message_get(user=request_user(request), message_id=message_id)
    except Message.DoesNotExist:
        raise not_found() from None
    response = media_response(message, as_attachment=True)
    if response is None:
        raise not_found()
    return response
