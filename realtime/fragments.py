"""Rows to frames: what a socket is sent, encoded once per event and UI language.

A frame carries translated labels, so it is made once per language and each socket
forwards the one its page speaks. The small events (``session_status``,
``messages_read``) are encoded for every language by the process that sends them
(realtime.events). Message and conversation events carry the rows their fragments are
made of (realtime.snapshots); the web process that holds the sockets loads them back
into unsaved model instances and renders them here (``frames_for``), once, in the
languages its sockets speak.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.template.loader import render_to_string
from django.utils import translation

from conversations.models import Contact, Conversation, Message
from conversations.serializers import conversation_data, message_data
from realtime import snapshots
from realtime.messages import Push
from whatsapp.models import WhatsAppSession

# What a build of a small event returns: its data and its HTML fragment.
Built = tuple[dict[str, Any], str]

# Key of the frames one user alone may read, beside the per-language frames of a push.
OWNER_FRAMES = "owner"


def encode_frame(event_type: str, data: dict[str, Any], html: str = "") -> str:
    return json.dumps({"type": event_type, **data, "html": html}, cls=DjangoJSONEncoder)


def languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _load_message(rows: dict[str, Any]) -> Message:
    message = snapshots.load(Message, rows["message"])
    if rows["reply_to"] is not None:
        message.reply_to = snapshots.load(Message, rows["reply_to"])
    if rows["sent_by"] is not None:
        message.sent_by = snapshots.load(get_user_model(), rows["sent_by"])
    return message


def _load_conversation(text: str, cache: dict) -> Conversation:
    key = ("conversation", text)
    if key not in cache:
        rows = json.loads(text)
        conversation = snapshots.load(Conversation, rows["conversation"])
        conversation.contact = snapshots.load(Contact, rows["contact"])
        conversation.session = snapshots.load(WhatsAppSession, rows["session"])
        if rows["assigned_to"] is not None:
            conversation.assigned_to = snapshots.load(get_user_model(), rows["assigned_to"])
        cache[key] = conversation
    return cache[key]


def _row(text: str, cache: dict) -> tuple[dict[str, Any], str]:
    """A conversation's JSON and list row in the current language, once per ``cache``."""
    key = ("row", text, translation.get_language())
    if key not in cache:
        conversation = _load_conversation(text, cache)
        cache[key] = (
            conversation_data(conversation),
            render_to_string("conversations/_conversation_row.html", {"c": conversation}),
        )
    return cache[key]


def _message_html(message: Message, rows: dict[str, Any]) -> str:
    context = {"m": message, "contact_name": rows["contact_name"]}
    return render_to_string("conversations/_message.html", context)


def frames_for(push: Push, langs: Iterable[str], cache: dict) -> dict[str, Any]:
    """A push's frames in ``langs``: pre-encoded, or rendered now from its rows.
    ``cache`` lives for one batch of pushes (rows its messages share are read once)."""
    if "frames" in push:
        return push["frames"]

    event, rows = push["event"], push["rows"]
    if event == "conversation_updated":
        text = rows["conversation"]

        def build() -> str:
            data, html = _row(text, cache)
            return encode_frame(event, {"conversation": data}, html)

    else:
        message = _load_message(rows)
        if event == "new_message":
            text = rows["conversation"]
            message.conversation = _load_conversation(text, cache)

            def build() -> str:
                data, row_html = _row(text, cache)
                # The list row too, so a page moves the row to the top without asking.
                payload: dict[str, Any] = {
                    "message": message_data(message),
                    "conversation": data,
                }
                payload["row_html"] = row_html
                return encode_frame(event, payload, _message_html(message, rows))

        else:  # message_status

            def build() -> str:
                html = _message_html(message, rows)
                return encode_frame(event, {"message": message_data(message)}, html)

    frames = {}
    for lang in langs:
        with translation.override(lang):
            frames[lang] = build()
    return frames
