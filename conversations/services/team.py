"""What the team keeps to itself: private notes (with @mentions) and tags.

A note is a message of its own direction (``Message.Direction.NOTE``) written here and
nowhere else: no path through ``message_send`` makes one, and the worker's outbox and
receipt queries match only outbound and inbound messages, so a note never reaches
WhatsApp whatever a client sends. Tags belong to a number's owner: whoever works the
number tags its conversations and contacts with the owner's tags.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Contact, Conversation, Message, NoteMention, Tag
from conversations.services.outbox import MAX_TEXT_LENGTH
from realtime import events
from vbcrm.errors import field_error, unstorable
from vbcrm.types import User
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_members

logger = logging.getLogger(__name__)

MAX_TAG_NAME = 40
MAX_TAGS = 20  # on one conversation or contact

# "@bob", "@ana.souza": Django's username characters, not after a word or another "@"
# (so an e-mail address mentions nobody).
MENTION_RE = re.compile(r"(?<![\w@])@([\w.@+-]+)")


def mentioned_usernames(text: str) -> set[str]:
    """The usernames a note's text @mentions, lower-cased (trailing punctuation dropped)."""
    return {m.group(1).rstrip(".-+@").lower() for m in MENTION_RE.finditer(text)} - {""}


def note_add(*, user: User, conversation: Conversation, text: str, client_key: str = "") -> Message:
    """A private note in the thread: seen by the team, never sent to WhatsApp.

    Everyone who works the number and is @mentioned by username (not the writer) gets
    an unread mention and a live ``note_mention``; a name of anyone else is plain text.
    ``conversation`` is one the user may see (a selector checked). With ``client_key``,
    a retried request returns the note already written.
    """
    text = (text or "").strip()
    if not text:
        raise field_error("text", _("Write the note."), "empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise field_error(
            "text",
            _("Messages are limited to %(n)d characters.") % {"n": MAX_TEXT_LENGTH},
            "too_long",
        )
    for field, value in (("text", text), ("client_key", client_key)):
        reason = unstorable(value)
        if reason is not None:
            raise field_error(field, _(reason))
    client_key = client_key[:64]
    if client_key:
        existing = Message.objects.filter(sent_by=user, client_key=client_key).first()
        if existing is not None and existing.is_note:
            return existing
        if existing is not None:
            raise field_error("client_key", _("This key was used for a message."), "conflict")
    wanted = mentioned_usernames(text)
    members = session_members(session=conversation.session) if wanted else []
    mentioned = [u for u in members if u.get_username().lower() in wanted and u.pk != user.pk]
    try:
        with transaction.atomic():
            note = Message.objects.create(
                conversation=conversation,
                # Never a WhatsApp id: nothing WhatsApp says can ever match a note.
                wa_id=f"note-{uuid.uuid4().hex}",
                direction=Message.Direction.NOTE,
                status=Message.Status.NOTE,
                kind=Message.Kind.TEXT,
                body=text,
                sent_by=user,
                client_key=client_key,
            )
            NoteMention.objects.bulk_create(
                NoteMention(message=note, conversation=conversation, user=u) for u in mentioned
            )
            events.message_created(note)
            if mentioned:
                events.note_mentioned(note, user, [u.pk for u in mentioned])
    except IntegrityError:
        if client_key:  # the same key raced in from a concurrent retry
            return Message.objects.get(sent_by=user, client_key=client_key)
        raise
    logger.info(
        "note added id=%s conversation=%s mentions=%d", note.pk, conversation.pk, len(mentioned)
    )
    return note


def mentions_mark_read(*, user: User, conversation: Conversation) -> int:
    """The user opened the conversation: their mentions in it are read."""
    count = NoteMention.objects.filter(
        user=user, conversation=conversation, read_at__isnull=True
    ).update(read_at=timezone.now())
    if count:
        events.mentions_read(user.pk, conversation.pk)
    return count


# --- Tags --------------------------------------------------------------------------------


def tag_name_clean(name: str) -> str:
    """A tag's name as stored (spaces collapsed), or ValidationError on ``name``."""
    name = " ".join((name or "").split())
    if not name:
        raise field_error("name", _("Name the tag."), "required")
    if len(name) > MAX_TAG_NAME:
        raise field_error(
            "name",
            _("Tag names are limited to %(n)d characters.") % {"n": MAX_TAG_NAME},
            "too_long",
        )
    reason = unstorable(name)
    if reason is not None:
        raise field_error("name", _(reason))
    return name


def tag_create(*, session: WhatsAppSession, name: str, color: str = "") -> Tag:
    """A tag of the number's owner (whoever of the number's team makes it). A name the
    owner has already (in any case) answers that tag."""
    name = tag_name_clean(name)
    color = color or Tag.Color.GRAY
    if color not in Tag.Color.values:
        raise field_error("color", _("Choose one of the colours."), "invalid_choice")
    existing = (
        Tag.objects.annotate(lower=Lower("name"))
        .filter(owner_id=session.owner_id, lower=name.lower())
        .first()
    )
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            tag = Tag.objects.create(owner_id=session.owner_id, name=name, color=color)
    except IntegrityError:  # made at the same moment by someone else
        return Tag.objects.annotate(lower=Lower("name")).get(
            owner_id=session.owner_id, lower=name.lower()
        )
    logger.info("tag created id=%s owner=%s", tag.pk, session.owner_id)
    return tag


def _owned_tags(session: WhatsAppSession, tag_ids: Iterable[int]) -> list[Tag]:
    ids = set(tag_ids)
    if len(ids) > MAX_TAGS:
        raise field_error("tag_ids", _("At most %(n)d tags.") % {"n": MAX_TAGS}, "too_many")
    tags = list(Tag.objects.filter(pk__in=ids, owner_id=session.owner_id))
    if len(tags) != len(ids):
        # Someone else's tag is as unknown as one that does not exist.
        raise field_error("tag_ids", _("No such tag for this number."), "not_found")
    return tags


def conversation_tags_set(*, conversation: Conversation, tag_ids: Iterable[int]) -> list[Tag]:
    """The conversation's tags become these (the number owner's tags, by id)."""
    tags = _owned_tags(conversation.session, tag_ids)
    with transaction.atomic():
        conversation.tags.set(tags)
        events.tags_changed(conversation.session_id, [conversation.pk])
    return sorted(tags, key=lambda t: t.name.lower())


def contact_tags_set(*, contact: Contact, tag_ids: Iterable[int]) -> list[Tag]:
    """The contact's tags become these (its number owner's tags, by id)."""
    tags = _owned_tags(contact.session, tag_ids)
    with transaction.atomic():
        contact.tags.set(tags)
        conversation_ids = list(contact.conversations.values_list("pk", flat=True))
        events.tags_changed(contact.session_id, conversation_ids)
    return sorted(tags, key=lambda t: t.name.lower())
