"""The browser's socket at /ws/: authenticate, validate, call one selector or service, forward.

Protocol (JSON text frames ``{"type": ...}``; the seed's names):

client -> server
  ``join``                                   re-read the numbers the user may see
  ``join_conversation``  ``conversation_id``  receive the thread's ticks and media updates
  ``leave_conversation`` ``conversation_id``
  ``send_message``       ``conversation_id``, ``text``, ``client_key``?, ``reply_to_id``?,
                         or instead of the text ``location`` (``latitude``, ``longitude``,
                         ``name``?, ``address``?) or ``contact`` (``name`` and ``phone``,
                         or ``vcard``)
  ``mark_as_read``       ``conversation_id``
  ``add_note``, ``set_tags``: a private note, a conversation's or contact's tags
                         (realtime.team_frames)
  Any frame may carry ``ref`` (a short string) that the answer echoes.

server -> client (a socket message may hold several frames, one a line)
  ``new_message``, ``conversation_updated``, ``messages_read``, ``message_status``,
  ``system_line`` (an assignment or queue change, to the sockets watching the thread),
  ``session_status`` (pre-encoded by realtime.events), ``resync`` (live events were
  lost on the way: catch up as after a reconnect), the answers ``joined``,
  ``joined_conversation``, ``left_conversation``, ``message_queued``, ``marked_read``,
  and ``error`` (``code``, ``message``) for a bad frame or a refused one. The
  socket stays open after an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal, cast, overload
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _

from conversations import selectors, services
from conversations.models import Conversation
from realtime import hub, team_frames
from realtime.fragments import OWNER_FRAMES, languages
from realtime.layer import conversation_group, session_group, user_group
from realtime.wire import Wire, wire_of
from vbcrm.errors import first_error
from vbcrm.types import User
from whatsapp.selectors import session_list

logger = logging.getLogger(__name__)

MAX_FRAME_CHARS = 32 * 1024
MAX_REF_CHARS = 64
RESYNC_FRAME = json.dumps({"type": "resync"})


class FrameError(Exception):
    """A frame we refuse: answered with an ``error`` frame, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@overload
def _positive_int(frame: dict[str, Any], key: str, *, required: Literal[True] = True) -> int: ...
@overload
def _positive_int(frame: dict[str, Any], key: str, *, required: bool) -> int | None: ...


def _positive_int(frame: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = frame.get(key)
    if value is None and not required:
        return None
    # bool is an int in Python; true is not a conversation id.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FrameError("invalid", _("“%(field)s” must be a positive integer.") % {"field": key})
    return value


def _string(frame: dict[str, Any], key: str, *, max_length: int) -> str:
    value = frame.get(key, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise FrameError(
            "invalid",
            _("“%(field)s” must be text of at most %(n)d characters.")
            % {"field": key, "n": max_length},
        )
    return value


# --- One sync unit of work per frame (the ORM is sync-only) ------------------------------


@database_sync_to_async
def _presence(user_id: int, opened: bool) -> None:
    """A live tab opened or closed: an available agent goes away a while after the last."""
    if opened:
        services.presence_socket_opened(user_id=user_id)
    else:
        services.presence_socket_closed(user_id=user_id)


@database_sync_to_async
def _visible_session_ids(user: User) -> set[int]:
    return set(session_list(user=user).values_list("pk", flat=True))


@database_sync_to_async
def _conversation_session(user: User, conversation_id: int) -> int | None:
    """The conversation's number if ``user`` may see it; None otherwise."""
    try:
        return selectors.conversation_access(user=user, conversation_id=conversation_id).session_id
    except Conversation.DoesNotExist:
        return None


def _coordinate(location: dict[str, Any], key: str) -> float:
    value = location.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError("invalid", _("“%(field)s” must be a number.") % {"field": key})
    return float(value)


def _extra(frame: dict[str, Any]) -> dict[str, Any]:
    """A ``send_message`` frame's ``location`` or ``contact``, as message_send takes them."""
    extra: dict[str, Any] = {}
    for key in ("location", "contact"):
        value = frame.get(key)
        if value is not None and not isinstance(value, dict):
            raise FrameError("invalid", _("“%(field)s” must be an object.") % {"field": key})
    if (location := frame.get("location")) is not None:
        extra["location"] = services.Location(
            latitude=_coordinate(location, "latitude"),
            longitude=_coordinate(location, "longitude"),
            name=_string(location, "name", max_length=255),
            address=_string(location, "address", max_length=1000),
        )
    if (contact := frame.get("contact")) is not None:
        extra["contact"] = services.ContactCard(
            name=_string(contact, "name", max_length=128),
            phone=_string(contact, "phone", max_length=40),
            vcard=_string(contact, "vcard", max_length=10_000),
        )
    return extra


@database_sync_to_async
def _send_message(
    user: User,
    language: str,
    conversation_id: int,
    text: str,
    client_key: str,
    reply_to_id: int | None,
    extra: dict[str, Any],
) -> int | None:
    with translation.override(language):
        try:
            conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
        except Conversation.DoesNotExist:
            return None
        try:
            message = services.message_send(
                user=user,
                conversation=conversation,
                text=text,
                reply_to_id=reply_to_id,
                client_key=client_key,
                **extra,
            )
        except ValidationError as exc:
            raise FrameError(*first_error(exc)) from None
        return message.pk


@database_sync_to_async
def _mark_read(user: User, conversation_id: int) -> int | None:
    try:
        conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        return None
    return services.conversation_mark_read(conversation=conversation, user=user)


def _wire(scope: Mapping[str, Any]) -> Wire | None:
    """daphne's connection, for live frames written straight to it (realtime.wire),
    unless VBCRM_SOCKET_DIRECT_WRITES turned that off."""
    return wire_of(scope) if settings.VBCRM_SOCKET_DIRECT_WRITES else None


def _language(scope: Mapping[str, Any]) -> str:
    """The page's language (``/ws/?lang=en``), so pushed fragments match the page."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    wanted = (query.get("lang") or [""])[0].lower()
    return wanted if wanted in languages() else settings.LANGUAGE_CODE


class InboxConsumer(AsyncWebsocketConsumer):
    # No channel of its own: realtime.hub receives for every socket of the
    # process and hands this one its groups' frames (forward, groups_refresh).
    channel_layer_alias = "socket-hub-only"
    groups_joined: set[str]
    user: User
    # conversation id -> its number, for the threads this socket has open
    conversations: dict[int, int]
    # Frames forwarded before the accept, sent right after it (None once accepted).
    _early: list[str] | None = None
    # Whether this socket counts among its user's live tabs (realtime presence).
    counted: bool = False
    # daphne's connection, for live frames framed once for every socket (realtime.wire)
    wire: Wire | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.groups_joined = set()
        self.conversations = {}
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        # channels' AuthMiddleware put a lazy proxy of the signed-in account there.
        self.user = cast(User, user)
        self.language = _language(self.scope)
        self.wire = _wire(self.scope)
        # Groups first, then accept: nothing committed after the page's sync is missed.
        # What the hub forwards meanwhile waits for the accept (a send before it is refused).
        self._early = []
        await self._join(user_group(user.pk))
        await self._refresh_groups()
        await _presence(user.pk, opened=True)
        self.counted = True
        await self.accept()
        while self._early:
            early, self._early = self._early, []
            for text in early:
                await self.send(text_data=text)
        self._early = None

    async def disconnect(self, code: int) -> None:
        for group in list(self.groups_joined):
            await self._leave(group)
        if self.counted:
            self.counted = False
            await _presence(self.user.pk, opened=False)

    async def _join(self, group: str) -> None:
        if group not in self.groups_joined:
            await hub.subscribe(self, group)
            self.groups_joined.add(group)

    async def _leave(self, group: str) -> None:
        if group in self.groups_joined:
            await hub.unsubscribe(self, group)
            self.groups_joined.discard(group)

    async def _refresh_groups(self) -> set[int]:
        """Join the groups of the numbers the user may see now; leave the others."""
        visible = await _visible_session_ids(self.user)
        wanted = {session_group(s) for s in visible}
        for group in [g for g in self.groups_joined if g.startswith("wa-session-")]:
            if group not in wanted:
                await self._leave(group)
        for group in wanted:
            await self._join(group)
        for conversation_id, session_id in list(self.conversations.items()):
            if session_id not in visible:
                del self.conversations[conversation_id]
                await self._leave(conversation_group(conversation_id))
        return visible

    # --- frames from the browser ---------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        ref: str | None = None
        frame_type = ""
        try:
            frame = self._decode(text_data)
            ref = frame.get("ref") if isinstance(frame.get("ref"), str) else None
            if ref is not None and len(ref) > MAX_REF_CHARS:
                ref = None
            frame_type = frame["type"]
            handler = self._handlers.get(frame_type)
            if handler is None:
                raise FrameError("unknown_type", _("Unknown frame type."))
            answer = await handler(self, frame)
        except FrameError as exc:
            await self._reply({"type": "error", "code": exc.code, "message": exc.message}, ref)
            return
        if answer is not None:
            await self._reply(answer, ref)

    def _decode(self, text_data: str | None) -> dict[str, Any]:
        with translation.override(self.language):
            if text_data is None:
                raise FrameError("bad_frame", _("Frames must be JSON text."))
            if len(text_data) > MAX_FRAME_CHARS:
                raise FrameError("too_large", _("The frame is too large."))
            try:
                frame = json.loads(text_data)
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                raise FrameError("bad_frame", _("The frame is not valid JSON.")) from None
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                raise FrameError("bad_frame", _("A frame is a JSON object with a “type”."))
            return frame

    async def _reply(self, data: dict[str, Any], ref: str | None) -> None:
        if ref is not None:
            data["ref"] = ref
        await self.send(text_data=json.dumps(data))

    def _not_found(self) -> FrameError:
        with translation.override(self.language):
            return FrameError("not_found", _("Conversation not found."))

    def _conversation_id(self, frame: dict[str, Any]) -> int:
        with translation.override(self.language):
            return _positive_int(frame, "conversation_id")

    async def _on_join(self, frame: dict[str, Any]) -> dict[str, Any]:
        visible = await self._refresh_groups()
        return {"type": "joined", "session_ids": sorted(visible)}

    async def _on_join_conversation(self, frame: dict[str, Any]) -> dict[str, Any]:
        conversation_id = self._conversation_id(frame)
        session_id = await _conversation_session(self.user, conversation_id)
        if session_id is None:
            raise self._not_found()
        self.conversations[conversation_id] = session_id
        await self._join(conversation_group(conversation_id))
        return {"type": "joined_conversation", "conversation_id": conversation_id}

    async def _on_leave_conversation(self, frame: dict[str, Any]) -> dict[str, Any]:
        conversation_id = self._conversation_id(frame)
        self.conversations.pop(conversation_id, None)
        await self._leave(conversation_group(conversation_id))
        return {"type": "left_conversation", "conversation_id": conversation_id}

    async def _on_send_message(self, frame: dict[str, Any]) -> dict[str, Any]:
        with translation.override(self.language):
            conversation_id = _positive_int(frame, "conversation_id")
            # Only bounded by the frame: the send service checks the length, and answers
            # ``too_long`` as it does to the page and the API.
            text = _string(frame, "text", max_length=MAX_FRAME_CHARS)
            client_key = _string(frame, "client_key", max_length=64)
            reply_to_id = _positive_int(frame, "reply_to_id", required=False)
            extra = _extra(frame)
        message_id = await _send_message(
            self.user, self.language, conversation_id, text, client_key, reply_to_id, extra
        )
        if message_id is None:
            raise self._not_found()
        return {"type": "message_queued", "conversation_id": conversation_id, "id": message_id}

    async def _on_mark_as_read(self, frame: dict[str, Any]) -> dict[str, Any]:
        conversation_id = self._conversation_id(frame)
        count = await _mark_read(self.user, conversation_id)
        if count is None:
            raise self._not_found()
        return {"type": "marked_read", "conversation_id": conversation_id, "count": count}

    _handlers = {
        "join": _on_join,
        "join_conversation": _on_join_conversation,
        "leave_conversation": _on_leave_conversation,
        "send_message": _on_send_message,
        "mark_as_read": _on_mark_as_read,
        # Private notes and tags (realtime.team_frames).
        "add_note": team_frames.on_add_note,
        "set_tags": team_frames.on_set_tags,
    }

    # --- events from realtime.hub -----------------------------------------------------------

    async def forward(self, frames: list[dict[str, Any]]) -> None:
        """Frames from realtime.hub, each one per language: this socket's
        language of each, in one socket message, one frame a line (JSON text holds no
        raw line break).

        A frame set may carry, under ``OWNER_FRAMES``, frames for one user alone
        (a number's QR and pairing codes for its owner): this socket sends those only
        when its user is that one, and the others otherwise."""
        await self._send_text("\n".join(self._frame(f) for f in frames))

    async def _send_text(self, text: str) -> None:
        if self._early is not None:  # not accepted yet: sent right after the accept
            self._early.append(text)
        elif self.wire is None or not self.wire.send_text(text):
            await self.send(text_data=text)

    def _frame(self, frames: dict[str, Any]) -> str:
        owner = frames.get(OWNER_FRAMES)
        if owner is not None and owner["user_id"] == self.user.pk:
            frames = owner["frames"]
        frame = frames.get(self.language)
        if not isinstance(frame, str):
            frame = next(f for f in frames.values() if isinstance(f, str))
        return frame

    async def resync(self) -> None:
        """Live events meant for this socket were lost on the way (realtime.hub
        noticed): the page catches up from the database, as after a reconnect."""
        await self._send_text(RESYNC_FRAME)

    async def groups_refresh(self, event: dict[str, Any]) -> None:
        """The user gained or lost a number (realtime.events.access_changed)."""
        await self._refresh_groups()
