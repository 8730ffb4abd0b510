"""Groups: their subject, picture and members, as WhatsApp tells them.

The worker reads a group's info in the background (never before a message is stored):
when its conversation first appears, for groups still without info when the number
connects, and again whenever WhatsApp says the group changed. These are the reads it
asks first and the write it does with the answer.
"""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from conversations.models import Contact, Conversation, GroupParticipant
from realtime import events
from whatsapp.gateway.base import GroupInfo
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

# Groups without info read per connect (the rest wait for their next message).
GROUPS_PER_SWEEP = 100


def group_known(*, session_id: int, jid: str) -> tuple[int, str] | None:
    """The group contact's id and the id of the picture stored for it, when the number
    has a conversation with that group and does not ignore groups; None otherwise."""
    row = (
        Contact.objects.filter(
            session_id=session_id, jid=jid, is_group=True, session__ignore_groups=False
        )
        .values_list("pk", "group_picture_id")
        .first()
    )
    return (row[0], row[1]) if row else None


def groups_without_info(*, session_id: int, limit: int = GROUPS_PER_SWEEP) -> list[str]:
    """JIDs of the number's groups whose info was never read (none when it ignores
    groups), newest conversation first."""
    return list(
        Conversation.objects.filter(
            session_id=session_id,
            contact__is_group=True,
            contact__group_info_at__isnull=True,
            session__ignore_groups=False,
        )
        .order_by("-last_message_at")
        .values_list("contact__jid", flat=True)[:limit]
    )


def group_info_store(
    *, session: WhatsAppSession, info: GroupInfo, picture_name: str = ""
) -> Contact | None:
    """Save a group's subject, members and picture; the pages showing it hear of it.

    ``picture_name`` is the new picture's file under MEDIA_ROOT when the worker fetched
    one. A group with no picture (``info.picture_id`` empty) loses the stored one; with
    the known picture it keeps it. Returns None (and deletes the fetched file) when the
    number has no such group.
    """
    with transaction.atomic():
        contact = (
            Contact.objects.select_for_update()
            .filter(session=session, jid=info.jid, is_group=True)
            .first()
        )
        if contact is None:
            if picture_name:
                transaction.on_commit(lambda: default_storage.delete(picture_name))
            return None
        fields = ["group_subject", "group_info_at", "updated_at"]
        contact.group_subject = info.subject[:128]
        contact.group_info_at = timezone.now()
        if picture_name or not info.picture_id:
            replaced = contact.group_picture.name or ""
            if replaced and replaced != picture_name:
                transaction.on_commit(lambda: default_storage.delete(replaced))
            contact.group_picture.name = picture_name
            contact.group_picture_id = info.picture_id if picture_name else ""
            fields += ["group_picture", "group_picture_id"]
        contact.save(update_fields=fields)
        _participants_replace(contact, info)
        conversations = Conversation.objects.filter(contact=contact).select_related(
            "session", "assigned_to"
        )
        for conversation in conversations:
            conversation.contact = contact
            events.conversation_updated(conversation)
    logger.info(
        "group info stored session=%s contact=%s members=%d",
        session.pk,
        contact.pk,
        len(info.participants),
    )
    return contact


def _participants_replace(contact: Contact, info: GroupInfo) -> None:
    """The members as listed now: the old list goes, whoever left goes with it."""
    GroupParticipant.objects.filter(group=contact).delete()
    rows: dict[str, GroupParticipant] = {}
    for p in info.participants:
        if p.jid and p.jid not in rows:
            rows[p.jid] = GroupParticipant(
                group=contact,
                jid=p.jid[:128],
                lid=p.lid[:128],
                phone=p.phone[:32],
                name=p.name[:128],
                is_admin=p.is_admin,
            )
    GroupParticipant.objects.bulk_create(rows.values(), batch_size=500)
