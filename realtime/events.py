"""The one place that talks to the channel layer.

Services call these functions inside their transaction; each event is built
and sent after commit (never a ghost of a rolled-back write), rendered ONCE
(JSON data plus the HTML fragment) and pre-encoded, so consumers only forward
the frame to their sockets. "Once" means once per event and UI language, never
once per socket: a fragment carries translated labels, so each event is encoded
for every language in ``settings.LANGUAGES`` and each socket forwards the one
its page speaks.

Groups:
- ``wa-session-<id>``: every socket of a user who may see number <id>;
- ``conversation-<id>``: sockets that have the conversation open (``join_conversation``
  checked access first); message ticks and media updates go only there;
- ``user-<id>``: every socket of one user;
- ``wa-worker-<id>``: the worker holding number <id>; ``wa-workers``: every worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

logger = logging.getLogger(__name__)

WORKERS_GROUP = "wa-workers"


def session_group(session_id: int) -> str:
    return f"wa-session-{session_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def worker_group(session_id: int) -> str:
    return f"wa-worker-{session_id}"


def encode_frame(event_type: str, data: dict[str, Any], html: str = "") -> str:
    return json.dumps({"type": event_type, **data, "html": html}, cls=DjangoJSONEncoder)


def languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _group_send(groups: Iterable[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for group in groups:
        send(group, message)


Built = tuple[dict[str, Any], str]


def _push(groups: Iterable[str], event_type: str, build: Callable[[], Built]) -> None:
    """Encode the event once per UI language and send it to ``groups``.

    ``build`` returns ``(data, html)``; it runs under each language in turn.
    """
    frames: dict[str, str] = {}
    for lang in languages():
        with translation.override(lang):
            data, html = build()
            frames[lang] = encode_frame(event_type, data, html)
    _group_send(groups, {"type": "push", "event": event_type, "frames": frames})


def _after_commit(fn) -> None:
    # robust: a broadcast failure (layer down) is logged and never undoes or
    # fails the write that already committed.
    transaction.on_commit(fn, robust=True)


# --- Conversations and messages -------------------------------------------------------


def message_created(message) -> None:
    def send() -> None:
        from conversations.serializers import conversation_data, message_data

        conversation = message.conversation

        def build() -> Built:
            data = {
                "message": message_data(message),
                "conversation": conversation_data(conversation),
                # The list row too, so a page moves the row to the top without asking.
                "row_html": render_to_string(
                    "conversations/_conversation_row.html", {"c": conversation}
                ),
            }
            return data, render_to_string("conversations/_message.html", {"m": message})

        _push([session_group(conversation.session_id)], "new_message", build)

    _after_commit(send)


def message_updated(message) -> None:
    def send() -> None:
        from conversations.serializers import message_data

        def build() -> Built:
            html = render_to_string("conversations/_message.html", {"m": message})
            return {"message": message_data(message)}, html

        _push([conversation_group(message.conversation_id)], "message_status", build)

    _after_commit(send)


def conversation_updated(conversation) -> None:
    def send() -> None:
        from conversations.serializers import conversation_data

        def build() -> Built:
            html = render_to_string("conversations/_conversation_row.html", {"c": conversation})
            return {"conversation": conversation_data(conversation)}, html

        _push([session_group(conversation.session_id)], "conversation_updated", build)

    _after_commit(send)


def messages_read(conversation, user) -> None:
    def send() -> None:
        _push(
            [session_group(conversation.session_id)],
            "messages_read",
            lambda: ({"conversation_id": conversation.pk, "by": user.pk}, ""),
        )

    _after_commit(send)


# --- Numbers -----------------------------------------------------------------------


def session_data(session) -> dict[str, Any]:
    from whatsapp.qr import qr_svg

    return {
        "id": session.pk,
        "name": session.name,
        "status": session.status,
        "status_label": str(session.get_status_display()),
        "status_detail": session.status_detail,
        "phone_number": session.phone_number,
        "qr_svg": qr_svg(session.qr_code) if session.qr_code else "",
        "pair_code": session.pair_code,
        "connected_at": session.connected_at.isoformat() if session.connected_at else None,
        "last_event_at": session.last_event_at.isoformat() if session.last_event_at else None,
        "lease_holder": session.lease_holder,
    }


def session_changed(session) -> None:
    def send() -> None:
        _push(
            [session_group(session.pk), user_group(session.owner_id)],
            "session_status",
            lambda: ({"session": session_data(session)}, ""),
        )

    _after_commit(send)


def session_deleted(session_id: int, user_ids: Iterable[int]) -> None:
    user_ids = list(user_ids)

    def send() -> None:
        data = {"session": {"id": session_id, "status": "deleted"}}
        _push([user_group(u) for u in user_ids], "session_status", lambda: (data, ""))
        _group_send([worker_group(session_id)], {"type": "worker.wakeup", "session_id": session_id})

    _after_commit(send)


def access_changed(user_ids: Iterable[int]) -> None:
    """These users gained or lost numbers: their open sockets re-read which
    ``wa-session-*`` groups they belong to."""
    user_ids = list(user_ids)

    def send() -> None:
        _group_send([user_group(u) for u in user_ids], {"type": "groups.refresh"})

    _after_commit(send)


def worker_wakeup(session_id: int) -> None:
    """Tell the worker holding ``session_id`` to look at its outbox and state now.

    Only a nudge: the outbox is in the database and workers also poll it, so a
    lost wake-up delays a send by at most one poll interval, never loses it.
    """

    def send() -> None:
        message = {"type": "worker.wakeup", "session_id": session_id}
        _group_send([worker_group(session_id), WORKERS_GROUP], message)

    _after_commit(send)
