"""The live events: what services announce, built from the rows they wrote.

Services call these functions inside their transaction; each event is sent after
commit (never a ghost of a rolled-back write), by realtime.layer:

- message and conversation events (``new_message``, ``message_status``,
  ``conversation_updated``) carry the rows their fragments are made of
  (realtime.snapshots). Each web process's hub (realtime.hub) renders them when they
  arrive (realtime.fragments), once, in the languages its sockets speak. The writer
  (often the worker, under load) renders nothing, and no process renders a language
  nobody reads;
- the small ones (``session_status``, ``messages_read``) are encoded here for every
  language, by the writer;
- ``groups.refresh`` tells a user's sockets to re-read which numbers they follow, and
  ``worker.wakeup`` nudges the worker holding a number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation

from conversations.models import Conversation, ConversationEvent, Message
from conversations.selectors import conversation_tags
from conversations.serializers import note_mention_data
from conversations.services import webhooks
from realtime import snapshots
from realtime.fragments import OWNER_FRAMES, Built, encode_frame, languages
from realtime.layer import (
    WORKERS_GROUP,
    conversation_group,
    group_send,
    on_commit,
    session_group,
    user_group,
    worker_group,
)
from realtime.messages import GroupsRefresh, Push, WorkerWakeup
from realtime.snapshots import Snapshot
from vbcrm.types import User
from whatsapp.models import WhatsAppSession
from whatsapp.serializers import session_data


def _push(
    groups: Iterable[str],
    event_type: str,
    build: Callable[[], Built],
    owner: tuple[int, Callable[[], Built]] | None = None,
) -> None:
    """Encode a small event once per UI language now and send it to ``groups``.

    ``build`` returns ``(data, html)``; it runs under each language in turn. With
    ``owner`` (a user id and a build of its own), that user's sockets get the frames of
    the owner's build and every other socket those of ``build``
    (``frames[OWNER_FRAMES]``, picked by the consumer's ``forward``).
    """

    def encode(build: Callable[[], Built]) -> dict[str, Any]:
        frames: dict[str, Any] = {}
        for lang in languages():
            with translation.override(lang):
                data, html = build()
                frames[lang] = encode_frame(event_type, data, html)
        return frames

    frames = encode(build)
    if owner is not None:
        frames[OWNER_FRAMES] = {"user_id": owner[0], "frames": encode(owner[1])}
    push: Push = {"type": "push", "event": event_type, "frames": frames}
    group_send(groups, push)


def _push_rows(groups: Iterable[str], event_type: str, rows: dict[str, Any]) -> None:
    """Send the rows an event's fragments are made of; each web process renders them
    (realtime.fragments.frames_for), once, in the languages its sockets speak."""
    push: Push = {"type": "push", "event": event_type, "rows": rows}
    group_send(groups, push)


# --- Conversations and messages: rows out ------------------------------------------------

# What the fragments show of a user (user_label) and of a number: never more (no
# password hash, no lease or QR travels through the layer).
_USER_FIELDS = ("id", "username", "first_name", "last_name")
_SESSION_FIELDS = ("id", "name")
_QUOTED_FIELDS = ("id", "kind", "body")


def _user_rows(user: User | None) -> Snapshot | None:
    return snapshots.dump(user, _USER_FIELDS) if user is not None else None


def _conversation_rows(
    conversation: Conversation, sessions: dict[int, Snapshot] | None = None
) -> str:
    """A conversation and what its list row shows, as one JSON string: the messages of
    a batch share it, and a process renders the row once per string and language.
    ``sessions`` keeps the number's row across the conversations of one batch."""
    sessions = {} if sessions is None else sessions
    if conversation.session_id not in sessions:
        sessions[conversation.session_id] = snapshots.dump(conversation.session, _SESSION_FIELDS)
    return json.dumps(
        {
            "conversation": snapshots.dump(conversation),
            "contact": snapshots.dump(conversation.contact),
            "session": sessions[conversation.session_id],
            "assigned_to": _user_rows(conversation.assigned_to),
        }
    )


def _message_rows(message: Message) -> dict[str, Any]:
    return {
        "message": snapshots.dump(message),
        # No query when reply_to_id is None: the descriptor answers None itself.
        "reply_to": snapshots.dump(message.reply_to, _QUOTED_FIELDS)
        if message.reply_to is not None
        else None,
        "sent_by": _user_rows(message.sent_by) if message.sent_by_id else None,
        # who an inbound message is from, when WhatsApp gave no name with it
        "contact_name": message.conversation.contact.display_name
        if message.is_inbound and not message.sender_name
        else "",
    }


def new_message_rows(message: Message) -> dict[str, Any]:
    """The rows a ``new_message`` event carries for ``message`` (as messages_created
    sends them): the web process's start-up renders one to warm up (realtime.warm)."""
    return {**_message_rows(message), "conversation": _conversation_rows(message.conversation)}


def message_created(message: Message) -> None:
    messages_created([message])


def messages_created(messages: Iterable[Message]) -> None:
    """New messages (several when the worker stored a batch together): one
    ``new_message`` event each, in order, carrying its conversation as the batch left it."""
    messages = list(messages)

    def send() -> None:
        conversations: dict[int, str] = {}
        sessions: dict[int, Snapshot] = {}
        for message in messages:
            conversation = message.conversation
            if conversation.pk not in conversations:
                conversations[conversation.pk] = _conversation_rows(conversation, sessions)
            rows = {**_message_rows(message), "conversation": conversations[conversation.pk]}
            _push_rows([session_group(conversation.session_id)], "new_message", rows)

    on_commit(send)


def message_updated(message: Message) -> None:
    """A message changed (status, file). Called inside the change's transaction: the
    webhooks' outbox rows are written with it (status changes of ours only)."""
    webhooks.webhook_message_status(message)

    def send() -> None:
        rows = _message_rows(message)
        _push_rows([conversation_group(message.conversation_id)], "message_status", rows)

    on_commit(send)


def conversation_updated(conversation: Conversation) -> None:
    webhooks.webhook_conversation(conversation, webhooks.Event.CONVERSATION_UPDATED)

    def send() -> None:
        rows = {"conversation": _conversation_rows(conversation)}
        _push_rows([session_group(conversation.session_id)], "conversation_updated", rows)

    on_commit(send)


def conversation_event(event: ConversationEvent) -> None:
    """An assignment or queue change: a system line in the thread of everyone watching
    it. ``event`` comes with its users and queues (no query while rendering)."""

    def send() -> None:
        _push(
            [conversation_group(event.conversation_id)],
            "system_line",
            lambda: (
                {"conversation_id": event.conversation_id, "id": event.pk},
                render_to_string("conversations/_system_line.html", {"e": event}),
            ),
        )

    on_commit(send)


def messages_read(conversation: Conversation, user: User) -> None:
    def send() -> None:
        _push(
            [session_group(conversation.session_id)],
            "messages_read",
            lambda: ({"conversation_id": conversation.pk, "by": user.pk}, ""),
        )

    on_commit(send)


# --- Numbers -----------------------------------------------------------------------


def session_changed(session: WhatsAppSession) -> None:
    """Everyone who may see the number hears of it; only the owner's sockets get the
    frames with its QR or pairing code."""

    def send() -> None:
        _push(
            [session_group(session.pk), user_group(session.owner_id)],
            "session_status",
            lambda: ({"session": session_data(session)}, ""),
            owner=(
                session.owner_id,
                lambda: ({"session": session_data(session, secrets=True)}, ""),
            ),
        )

    on_commit(send)


def session_status_changed(session: WhatsAppSession) -> None:
    """The number's status moved (connected, disconnected, logged out...): for webhooks,
    inside the transaction that saved it (the pages hear of it by session_changed)."""
    webhooks.webhook_number_status(session)


def session_deleted(session_id: int, user_ids: Iterable[int]) -> None:
    user_ids = list(user_ids)

    def send() -> None:
        data = {"session": {"id": session_id, "status": "deleted"}}
        _push([user_group(u) for u in user_ids], "session_status", lambda: (data, ""))
        wakeup: WorkerWakeup = {"type": "worker.wakeup", "session_id": session_id}
        group_send([worker_group(session_id)], wakeup, broadcast=False)

    on_commit(send)


def access_changed(user_ids: Iterable[int]) -> None:
    """These users gained or lost numbers: their open sockets re-read which
    ``wa-session-*`` groups they belong to."""
    user_ids = list(user_ids)

    def send() -> None:
        refresh: GroupsRefresh = {"type": "groups.refresh"}
        group_send([user_group(u) for u in user_ids], refresh)

    on_commit(send)


def worker_wakeup(session_id: int) -> None:
    """Tell the worker holding ``session_id`` to look at its outbox and state now.

    Only a nudge: the outbox is in the database and workers also poll it, so a
    lost wake-up delays a send by at most one poll interval, never loses it.
    """

    def send() -> None:
        message: WorkerWakeup = {"type": "worker.wakeup", "session_id": session_id}
        group_send([worker_group(session_id), WORKERS_GROUP], message, broadcast=False)

    on_commit(send)


# --- Teams: notes and tags -----------------------------------------------------------


def note_mentioned(note: Message, by: User, user_ids: list[int]) -> None:
    """The users @mentioned in a private note: their sockets alone hear of it (the note
    itself reaches the number's sockets as any ``new_message``)."""

    def send() -> None:
        data = note_mention_data(note, by)
        _push([user_group(u) for u in user_ids], "note_mention", lambda: (data, ""))

    on_commit(send)


def mentions_read(user_id: int, conversation_id: int) -> None:
    """The user read their mentions in the conversation: their other pages drop the mark."""

    def send() -> None:
        data = {"conversation_id": conversation_id}
        _push([user_group(user_id)], "mentions_read", lambda: (data, ""))

    on_commit(send)


def tags_changed(session_id: int, conversation_ids: list[int]) -> None:
    """Tags of these conversations (or of their contact) changed: one ``tags_changed``
    each, with the tags as they are after commit, to everyone who sees the number."""

    def send() -> None:
        for data in conversation_tags(conversation_ids=conversation_ids):
            _push([session_group(session_id)], "tags_changed", _built(data))

    on_commit(send)


def _built(data: dict[str, Any]) -> Callable[[], Built]:
    """A build of a small event whose data needs no translation."""
    return lambda: (data, "")
