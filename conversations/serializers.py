"""Plain JSON shapes of conversations and messages, shared by the socket events and the API."""

from __future__ import annotations

from urllib.parse import quote

from django.urls import reverse

from conversations.models import Contact, Conversation, Message, Tag
from vbcrm.types import User


def group_picture_url(contact: Contact) -> str:
    """Where the page gets a group's picture ("" when it has none); the picture's id
    in the query lets a browser cache it until it changes."""
    if not contact.is_group or not contact.group_picture:
        return ""
    url = reverse("conversations:group_picture", args=[contact.pk])
    return f"{url}?v={quote(contact.group_picture_id)}"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def message_data(m: Message) -> dict:
    has_file = bool(m.media) and m.media_status == Message.MediaStatus.READY
    return {
        "id": m.pk,
        "conversation_id": m.conversation_id,
        "wa_id": m.wa_id,
        "direction": m.direction,
        "kind": m.kind,
        "body": m.body,
        "status": m.status,
        "error": m.error,
        "media_status": m.media_status,
        "media_url": reverse("conversations:media", args=[m.pk]) if has_file else None,
        "media_link": m.media_link,
        "mime_type": m.mime_type,
        "file_name": m.file_name,
        "file_size": m.file_size,
        "latitude": m.latitude,
        "longitude": m.longitude,
        "location_name": m.location_name,
        "sender_name": m.sender_name,
        "sent_by_id": m.sent_by_id,
        "automatic": m.automatic,
        "auto_reason": m.auto_reason,
        "reply_to_id": m.reply_to_id,
        "wa_timestamp": _iso(m.wa_timestamp),
        "created_at": _iso(m.created_at),
        "read_at": _iso(m.read_at),
    }


def conversation_data(c: Conversation) -> dict:
    contact = c.contact
    return {
        "id": c.pk,
        "session_id": c.session_id,
        "status": c.status,
        "assigned_to_id": c.assigned_to_id,
        "queue_id": c.queue_id,
        "unread_count": c.unread_count,
        "last_message_at": _iso(c.last_message_at),
        "last_message_preview": c.preview_display,
        "updated_at": _iso(c.updated_at),
        "contact": {
            "id": contact.pk,
            "name": contact.display_name,
            "phone": contact.phone,
            "jid": contact.jid,
            "is_group": contact.is_group,
            "picture": group_picture_url(contact),
        },
    }


def tag_data(t: Tag) -> dict:
    return {"id": t.pk, "name": t.name, "color": t.color}


def note_mention_data(note: Message, by: User) -> dict:
    """What a mentioned agent's page shows of a note (a notification): no HTML, the
    page puts the text in with textContent."""
    conversation = note.conversation
    return {
        "conversation_id": conversation.pk,
        "message_id": note.pk,
        "by": by.get_full_name() or by.get_username(),
        "contact_name": conversation.contact.display_name,
        "text": note.body[:200],
    }
