"""REST API for queues and availability (mounted under /api/whatsapp/ by vbcrm/api.py).

Reads through ``conversations.queue_selectors`` (owners see all their numbers' queues,
agents the ones they are in; a conversation or queue of a number someone does not work
answers 404) and writes through ``conversations.services``.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from conversations import queue_selectors, selectors, services
from conversations.api_schemas import MAX_ID, ConversationOut
from conversations.models import Conversation, Queue
from conversations.serializers import conversation_data
from vbcrm.api_base import errors, not_found, request_user

router = Router(tags=["queues"])


class QueueOut(Schema):
    id: int
    session_id: int = Field(description="The number (WhatsApp session) it belongs to.")
    name: str
    color: str = Field(description="#rrggbb")
    position: int = Field(description="Its place in the menu (lowest first).")
    parent_id: int | None = Field(description="The queue whose sub-menu it is in, if any.")
    assignment: str = Field(description="off or round_robin")


class MoveIn(Schema):
    queue_id: int | None = Field(
        ge=1, le=MAX_ID, description="A queue of the conversation's number, or null for none."
    )


class AvailabilityIn(Schema):
    available: bool


class AvailabilityOut(Schema):
    available: bool


@router.get("/queues", response={200: list[QueueOut], **errors(401)}, summary="List queues")
def queue_list(request: HttpRequest) -> list[Queue]:
    """The queues you see: every queue of your own numbers, and the ones you are in of
    the numbers you work."""
    return list(queue_selectors.queue_visible_list(user=request_user(request)))


@router.post(
    "/conversations/{conversation_id}/queue",
    response={200: ConversationOut, **errors(400, 401, 403, 404)},
    summary="Move a conversation to a queue",
)
def conversation_queue(request: HttpRequest, payload: MoveIn, conversation_id: int) -> dict:
    user = request_user(request)
    try:
        conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise not_found() from None
    queue = None
    if payload.queue_id is not None:
        try:
            queue = queue_selectors.queue_for_conversation(
                user=user, session_id=conversation.session_id, queue_id=payload.queue_id
            )
        except Queue.DoesNotExist:
            raise not_found() from None
    services.conversation_move(conversation=conversation, queue=queue, by=user)
    return conversation_data(conversation)


@router.get(
    "/me/availability",
    response={200: AvailabilityOut, **errors(401)},
    summary="Your availability for automatic assignment",
)
def availability_get(request: HttpRequest) -> dict:
    return {"available": services.presence_get(user=request_user(request)).available}


@router.put(
    "/me/availability",
    response={200: AvailabilityOut, **errors(400, 401, 403)},
    summary="Set yourself available or away",
)
def availability_set(request: HttpRequest, payload: AvailabilityIn) -> dict:
    presence = services.presence_set(user=request_user(request), available=payload.available)
    return {"available": presence.available}
