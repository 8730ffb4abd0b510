"""The socket's team frames (realtime.consumers dispatches them here): a private note and
a conversation's or contact's tags. Same rules as every frame: the user must work the
conversation's number (else ``not_found``, as if it did not exist), the service checks
the rest.

client -> server
  ``add_note``  ``conversation_id``, ``text``, ``client_key``?  -> ``note_added`` (``id``)
  ``set_tags``  ``conversation_id``, ``tag_ids`` (a list), ``target``? ("conversation",
                the default, or "contact")                     -> ``tags_set`` (``tag_ids``)

server -> client
  ``note_mention`` (to the mentioned user's sockets only), ``mentions_read`` and
  ``tags_changed`` (realtime.events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _

from conversations import selectors, services
from conversations.models import Conversation

# consumers imports this module to dispatch to it; its names are read at call time.
from realtime import consumers
from vbcrm.errors import first_error
from vbcrm.types import User

if TYPE_CHECKING:
    from realtime.consumers import InboxConsumer

MAX_NOTE_FRAME = 32 * 1024


def _frame_error(code: str, message: str) -> Exception:
    return consumers.FrameError(code, message)


@database_sync_to_async
def _add_note(
    user: User, language: str, conversation_id: int, text: str, client_key: str
) -> int | None:
    with translation.override(language):
        try:
            conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
        except Conversation.DoesNotExist:
            return None
        try:
            note = services.note_add(
                user=user, conversation=conversation, text=text, client_key=client_key
            )
        except ValidationError as exc:
            raise _frame_error(*first_error(exc)) from None
        return note.pk


@database_sync_to_async
def _set_tags(
    user: User, language: str, conversation_id: int, target: str, tag_ids: list[int]
) -> list[int] | None:
    with translation.override(language):
        try:
            conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
        except Conversation.DoesNotExist:
            return None
        try:
            if target == "contact":
                tags = services.contact_tags_set(contact=conversation.contact, tag_ids=tag_ids)
            else:
                tags = services.conversation_tags_set(conversation=conversation, tag_ids=tag_ids)
        except ValidationError as exc:
            raise _frame_error(*first_error(exc)) from None
        return [t.pk for t in tags]


async def on_add_note(consumer: InboxConsumer, frame: dict[str, Any]) -> dict[str, Any]:
    with translation.override(consumer.language):
        conversation_id = consumers._positive_int(frame, "conversation_id")
        text = consumers._string(frame, "text", max_length=MAX_NOTE_FRAME)
        client_key = consumers._string(frame, "client_key", max_length=64)
    note_id = await _add_note(consumer.user, consumer.language, conversation_id, text, client_key)
    if note_id is None:
        raise consumer._not_found()
    return {"type": "note_added", "conversation_id": conversation_id, "id": note_id}


async def on_set_tags(consumer: InboxConsumer, frame: dict[str, Any]) -> dict[str, Any]:
    with translation.override(consumer.language):
        conversation_id = consumers._positive_int(frame, "conversation_id")
        target = frame.get("target", "conversation")
        if target not in ("conversation", "contact"):
            raise _frame_error("invalid", _("“target” must be “conversation” or “contact”."))
        raw = frame.get("tag_ids")
        if not isinstance(raw, list) or len(raw) > 100:
            raise _frame_error("invalid", _("“tag_ids” must be a list of tag ids."))
        tag_ids = [consumers._positive_int({"tag_ids": v}, "tag_ids") for v in raw]
    result = await _set_tags(consumer.user, consumer.language, conversation_id, target, tag_ids)
    if result is None:
        raise consumer._not_found()
    return {
        "type": "tags_set",
        "conversation_id": conversation_id,
        "target": target,
        "tag_ids": result,
    }
