"""Messages seen on WhatsApp: who they are from, where they go, and what they change.

The worker calls these for live messages, history batches, downloaded files and receipts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations.models import (
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    message_preview,
)
from conversations.services import push, webhooks
from realtime import events
from vbcrm import metrics
from whatsapp.gateway.base import (
    MEDIA_KINDS,
    InboundMessage,
    is_group_jid,
    is_lid,
    is_phone_jid,
    jid_user,
)
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

_IGNORED_CHAT_SUFFIXES = ("@broadcast", "@newsletter")


# --- Contacts and conversations ------------------------------------------------------


@dataclass(frozen=True)
class _Addresses:
    jid: str  # the address the conversation is keyed by
    lid: str
    phone: str


def _addresses(msg: InboundMessage) -> _Addresses:
    """Work out a contact's phone JID and LID from whatever the message carries."""
    if msg.is_group or is_group_jid(msg.chat):
        return _Addresses(jid=msg.chat, lid="", phone="")
    candidates = [msg.chat, msg.chat_alt]
    if not msg.from_me:
        candidates += [msg.sender, msg.sender_alt]
    phone_jid = next((j for j in candidates if j and is_phone_jid(j)), "")
    lid = next((j for j in candidates if j and is_lid(j)), "")
    return _Addresses(
        jid=phone_jid or lid or msg.chat,
        lid=lid,
        phone=jid_user(phone_jid) if phone_jid else "",
    )


def _find_contact(session_id: int, addr: _Addresses) -> Contact | None:
    q = Q(jid=addr.jid)
    if addr.lid:
        q |= Q(lid=addr.lid) | Q(jid=addr.lid)
    return _preferred(Contact.objects.filter(q, session_id=session_id)[:2])


def _preferred(found: Iterable[Contact]) -> Contact | None:
    # Prefer the row keyed by the phone JID when a LID-only row also exists.
    return min(found, key=lambda c: not is_phone_jid(c.jid), default=None)


def _is_at(contact: Contact, addr: _Addresses) -> bool:
    """Whether _find_contact's query matches this contact for these addresses."""
    return contact.jid == addr.jid or (bool(addr.lid) and addr.lid in (contact.lid, contact.jid))


def _contact_for(session: WhatsAppSession, addr: _Addresses, push_name: str) -> Contact:
    contact = _find_contact(session.pk, addr)
    if contact is None:
        # Double-checked under the number's row lock: concurrent first messages from
        # one contact must make one contact and one conversation, not several.
        WhatsAppSession.objects.select_for_update(no_key=True).filter(pk=session.pk).values(
            "pk"
        ).first()
        contact = _find_contact(session.pk, addr)
    if contact is None:
        return Contact.objects.create(
            session=session,
            jid=addr.jid,
            lid=addr.lid,
            phone=addr.phone,
            push_name=push_name[:128],
            is_group=is_group_jid(addr.jid),
        )
    _contact_learn(contact, addr, push_name)
    return contact


def _contact_learn(contact: Contact, addr: _Addresses, push_name: str) -> None:
    """Save what a message tells about a known contact: its LID, its phone, its name."""
    fields = []
    if addr.lid and not contact.lid and contact.jid != addr.lid:
        contact.lid = addr.lid
        fields.append("lid")
    if addr.phone and is_lid(contact.jid):
        # First seen by LID, now we learn the phone: key it by the phone JID.
        contact.jid, contact.lid, contact.phone = addr.jid, contact.jid, addr.phone
        fields += ["jid", "lid", "phone"]
    if push_name and not contact.is_group and push_name != contact.push_name:
        contact.push_name = push_name[:128]
        fields.append("push_name")
    if fields:
        contact.save(update_fields=[*fields, "updated_at"])


def _locked() -> QuerySet[Conversation]:
    """Conversations read locked, with the number and the agent their live event shows
    (read here, not one by one after the commit, when the event waits for them); only
    the conversations' rows are locked."""
    return Conversation.objects.select_for_update(no_key=True, of=("self",)).select_related(
        "session", "assigned_to"
    )


def _conversation_for(
    session: WhatsAppSession, contact: Contact, *, lock: bool = False
) -> Conversation:
    """The contact's conversation on this number, made if new. ``lock``: read it locked,
    with the number and the agent its live event shows (as _conversations_advance
    does), for a caller that moves its counters next."""
    qs = (_locked() if lock else Conversation.objects).filter(session=session, contact=contact)
    conversation = qs.first()
    if conversation is None:
        WhatsAppSession.objects.select_for_update(no_key=True).filter(pk=session.pk).values(
            "pk"
        ).first()
        conversation, created = Conversation.objects.get_or_create(session=session, contact=contact)
        if created:  # a row this transaction inserted is locked by it already
            conversation.contact = contact
            webhooks.webhook_conversation(conversation, webhooks.Event.CONVERSATION_CREATED)
        elif lock:  # made meanwhile by another transaction: read it again, locked
            conversation = qs.get()
    return conversation


def _conversations_for(
    session: WhatsAppSession, names: dict[_Addresses, str]
) -> dict[_Addresses, Conversation]:
    """_contact_for and _conversation_for for each address of a batch (with the name
    its contact carries), in order, the known ones read in two queries in all.

    Each address gets what _find_contact would find at that point, message after
    message: the lookup follows what earlier addresses of the batch taught or created.
    Whatever is not found takes the per-address path, with its fresh read and its lock.
    """
    keys = {a.jid for a in names} | {a.lid for a in names if a.lid}
    by_jid: dict[str, Contact] = {}
    by_lid: dict[str, Contact] = {}

    def remember(contact: Contact) -> None:
        by_jid[contact.jid] = contact
        if contact.lid:
            by_lid[contact.lid] = contact

    for row in Contact.objects.filter(Q(jid__in=keys) | Q(lid__in=keys), session=session):
        remember(row)
    contact_of: dict[_Addresses, Contact] = {}
    for addr, name in names.items():
        near = [by_jid.get(addr.jid), by_lid.get(addr.lid), by_jid.get(addr.lid)]
        contact = _preferred(c for c in near if c is not None and _is_at(c, addr))
        if contact is None:
            contact = _contact_for(session, addr, name)
        else:
            _contact_learn(contact, addr, name)
        remember(contact)
        contact_of[addr] = contact

    conversations = {
        c.contact_id: c
        for c in Conversation.objects.filter(
            session=session, contact__in=[c.pk for c in contact_of.values()]
        )
    }
    conversation_of: dict[_Addresses, Conversation] = {}
    for addr, contact in contact_of.items():
        conversation = conversations.get(contact.pk)
        if conversation is None:
            conversation = conversations[contact.pk] = _conversation_for(session, contact)
        conversation.contact = contact
        conversation_of[addr] = conversation
    return conversation_of


# --- Inbound ---------------------------------------------------------------------------


def _ignored(session: WhatsAppSession, msg: InboundMessage) -> bool:
    if msg.chat.endswith(_IGNORED_CHAT_SUFFIXES):
        return True
    return bool(session.ignore_groups and (msg.is_group or is_group_jid(msg.chat)))


def _message_fields(msg: InboundMessage) -> dict:
    kind = Message.Kind(msg.kind.value if hasattr(msg.kind, "value") else msg.kind)
    has_media = kind.value in MEDIA_KINDS and msg.media_ref is not None
    return {
        "wa_id": msg.message_id,
        "direction": Message.Direction.OUTBOUND if msg.from_me else Message.Direction.INBOUND,
        "kind": kind,
        "body": msg.text,
        "sender_jid": msg.sender if msg.is_group else "",
        "sender_name": (msg.push_name if msg.is_group else "")[:128],
        "media_ref": msg.media_ref if has_media else None,
        "media_status": Message.MediaStatus.DOWNLOADING if has_media else "",
        "mime_type": msg.mimetype[:127],
        "file_name": msg.filename[:255],
        "file_size": msg.file_size,
        "latitude": msg.latitude,
        "longitude": msg.longitude,
        "location_name": msg.location_name[:255],
        "status": Message.Status.SENT if msg.from_me else Message.Status.RECEIVED,
        "wa_timestamp": msg.timestamp,
        "quoted_wa_id": msg.quoted_id,
    }


class _Replayed(Exception):
    """The message's insert was refused: another copy was stored meanwhile."""


_UNIQUE = ("conversation_id", "wa_id")  # the messages' uniq_message_wa_id


def _returns(db: BaseDatabaseWrapper) -> bool:
    """Whether ``db`` returns columns from an insert (a function of its own, so the tests
    take the other path on PostgreSQL too)."""
    return bool(db.features.can_return_columns_from_insert)


def _insert_new(message: Message) -> bool:
    """Insert ``message`` unless its conversation has a message of the same WhatsApp id
    already; whether it was inserted (then it has its id). One statement, ``INSERT … ON
    CONFLICT DO NOTHING RETURNING id``, where the ORM took a check and an insert (and
    Django's save() machinery around the insert): message_receive 12.1 → 10.3 ms
    in-process. A database that cannot return from an insert (SQLite before 3.35) takes
    the two."""
    db = connections[message._state.db or DEFAULT_DB_ALIAS]
    if not _returns(db):
        if Message.objects.filter(conversation=message.conversation, wa_id=message.wa_id).exists():
            return False
        try:
            # No savepoint around it (two round trips on every message): a refusal voids
            # the transaction, which is given up whole.
            message.save(force_insert=True)
        except IntegrityError as exc:
            raise _Replayed from exc
        return True
    fields = [f for f in Message._meta.local_concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(message, True), db) for f in fields]
    quote = db.ops.quote_name
    with db.cursor() as cursor:
        cursor.execute(
            # every name from the model; every value a parameter
            f"INSERT INTO {quote(Message._meta.db_table)}"  # noqa: S608
            f" ({', '.join(quote(str(f.column)) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT ({', '.join(quote(c) for c in _UNIQUE)}) DO NOTHING RETURNING id",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk = row[0]
    message._state.adding = False
    message._state.db = db.alias
    return True


def message_receive(*, session: WhatsAppSession, msg: InboundMessage) -> Message | None:
    """Store one message seen on WhatsApp, exactly once.

    Returns the new message, or ``None`` when it was a replay (same WhatsApp id
    in the same conversation) or is ignored (status broadcasts, groups when the
    number ignores them). Counters and preview move in the same transaction.
    """
    if _ignored(session, msg):
        return None
    try:
        with transaction.atomic():
            addr = _addresses(msg)
            name = "" if msg.from_me or msg.is_group else msg.push_name
            contact = _contact_for(session, addr, name)
            # Locked now (one read, not a second one to lock it before its counters move).
            conversation = _conversation_for(session, contact, lock=True)
            fields = _message_fields(msg)
            if msg.quoted_id:
                fields["reply_to"] = Message.objects.filter(
                    conversation=conversation, wa_id=msg.quoted_id
                ).first()
            message = Message(conversation=conversation, **fields)
            if not _insert_new(message):
                return None  # a copy is stored already
            reopened: set[int] = set()
            _conversations_advance(
                [message], live=True, reopened=reopened, locked={conversation.pk: conversation}
            )
            message.conversation.contact = contact  # the event renders it: no extra query
            replies = _automatic(session, [message], reopened)
            webhooks.webhook_messages_stored([message])
            push.push_messages_stored([message])
    except _Replayed:
        return None  # a concurrent copy won the race between our check and our insert
    metrics.MESSAGES_IN.inc()
    events.message_created(message)
    _announce(replies)
    _route([message], reopened)
    return message


def _automatic(
    session: WhatsAppSession, messages: list[Message], reopened: set[int]
) -> list[Message]:
    """The automatic replies to these messages, stored in their transaction."""
    # Imported here: autoreply builds on this module (a cycle at import time).
    from conversations.services.autoreply import automatic_replies

    return automatic_replies(session=session, messages=messages, reopened=reopened)


def _announce(replies: list[Message]) -> None:
    from conversations.services.autoreply import automatic_replies_announce

    automatic_replies_announce(replies)


def _route(messages: list[Message], reopened: set[int]) -> None:
    """The menu bot's turn, once the messages are committed (free for conversations
    already in a queue: no query)."""
    from conversations.services.routing import routing_after_inbound

    routing_after_inbound(messages=messages, reopened=reopened)


def _when(message: Message) -> datetime:
    """When a message happened: WhatsApp's time (every received one has it), or ours."""
    return message.wa_timestamp or message.created_at


# The fields of a conversation's current opening (see Conversation.opened_at).
OPENING_FIELDS = {"opened_at", "first_inbound_at", "first_reply_at"}


def opening_start(conv: Conversation, *, when: datetime, actor_id: int | None) -> ConversationEvent:
    """A closed conversation opens again at ``when``: a new opening starts, whose first
    customer message and first reply are measured afresh. Returns its ``reopened``
    record (for the caller to save: in bulk here, one by one when an agent reopens)."""
    conv.opened_at = when
    conv.first_inbound_at = None
    conv.first_reply_at = None
    return ConversationEvent(
        conversation=conv,
        kind=ConversationEvent.Kind.REOPENED,
        actor_id=actor_id,
        created_at=when,
    )


def _customer_wrote(conv: Conversation, when: datetime) -> set[str]:
    """The customer's message at ``when``: the first of the opening, and the start of a
    wait for an answer, unless those started already. Returns the fields it changed."""
    fields = set()
    if conv.first_inbound_at is None:
        conv.first_inbound_at = when
        fields.add("first_inbound_at")
    if conv.waiting_since is None:
        conv.waiting_since = when
        fields.add("waiting_since")
    return fields


def _human_replied(
    conv: Conversation, when: datetime, sender_id: int | None
) -> ConversationEvent | None:
    """A person answered (an agent, or someone on the phone): the wait ends, and if it is
    the opening's first answer to the customer, its ``replied`` record is returned."""
    if conv.first_inbound_at is None or conv.first_reply_at is not None:
        return None
    conv.first_reply_at = when
    return ConversationEvent(
        conversation=conv,
        kind=ConversationEvent.Kind.REPLIED,
        actor_id=sender_id,
        since=conv.first_inbound_at,
        created_at=when,
    )


def _conversations_advance(
    messages: Sequence[Message],
    *,
    live: bool,
    reopened: set[int] | None = None,
    locked: dict[int, Conversation] | None = None,
) -> dict[int, Conversation]:
    """Move the counters and preview of these new messages' conversations, inside their
    transaction: each conversation locked once, in id order (no deadlocks), and saved once.
    Returns them by id; each message's ``conversation`` is then its locked row.

    Live messages (received or queued now) count in order: each takes the preview
    unless it is older than the one shown, an inbound one counts as unread and reopens
    a closed conversation, and the conversation is saved even when only ``updated_at``
    moves. History only moves a conversation forward: its newest message (the first of
    equals) takes the preview if it is strictly newer than the one shown, nothing counts
    as unread or reopens, and a conversation it does not move is not saved. The ids of
    the conversations reopened are added to ``reopened``. ``locked``: the messages'
    conversations, when the caller has read them locked already (by id).
    """
    if locked is None:
        locked = {
            c.pk: c
            for c in _locked().filter(pk__in={m.conversation_id for m in messages}).order_by("pk")
        }
    shown = list(messages)
    if not live:
        newest: dict[int, Message] = {}
        for message in messages:
            best = newest.get(message.conversation_id)
            if best is None or _when(message) > _when(best):
                newest[message.conversation_id] = message
        shown = list(newest.values())
    changed: dict[int, set[str]] = {pk: set() for pk in locked}
    marks: list[ConversationEvent] = []  # what the reports measure: reopenings, first replies
    for message in shown:
        conv = locked[message.conversation_id]
        fields = changed[conv.pk]
        when = _when(message)
        later = when >= conv.last_message_at if live else when > conv.last_message_at
        if not conv.last_message_preview or later:
            conv.last_message_at = when
            conv.last_message_preview = message_preview(
                message.kind, message.body, message.file_name, message.location_name
            )
            fields |= {"last_message_at", "last_message_preview"}
        if (
            live
            and message.sent_by_id is not None
            and message.direction == Message.Direction.OUTBOUND
            and not message.automatic
        ):
            conv.last_agent_reply_at = message.created_at or timezone.now()
            fields.add("last_agent_reply_at")
        if live and message.direction == Message.Direction.INBOUND:
            conv.unread_count += 1  # the row is locked: no lost update
            fields.add("unread_count")
            if conv.status == Conversation.Status.CLOSED:
                conv.status = Conversation.Status.OPEN
                fields.add("status")
                if reopened is not None:
                    reopened.add(conv.pk)
                marks.append(opening_start(conv, when=when, actor_id=None))
                fields |= OPENING_FIELDS
            fields |= _customer_wrote(conv, when)
        elif live and message.direction == Message.Direction.OUTBOUND and not message.automatic:
            mark = _human_replied(conv, when, message.sent_by_id)
            if mark is not None:
                marks.append(mark)
                fields.add("first_reply_at")
            if conv.waiting_since is not None:
                conv.waiting_since = None
                fields.add("waiting_since")
    for pk, conv in locked.items():
        if live or changed[pk]:
            conv.save(update_fields=sorted(changed[pk] | {"updated_at"}))
    if marks:
        ConversationEvent.objects.bulk_create(marks)
    for message in messages:
        message.conversation = locked[message.conversation_id]
    return locked


def message_receive_batch(
    *, session: WhatsAppSession, msgs: Sequence[InboundMessage]
) -> list[Message]:
    """Store several messages seen on WhatsApp in ONE transaction (group commit).

    What the worker calls when messages queue up under load. Every guarantee of
    :func:`message_receive` holds, message by message and in order: stored once
    (a WhatsApp id already stored, or twice in the batch, is skipped), one contact
    and one conversation per contact (same row locks), counters and preview move in
    the same transaction, an inbound message reopens a closed conversation, and the
    events go out after commit. Returns the new messages, in order. Each event
    carries its conversation as the whole batch left it.
    """
    wanted = [m for m in msgs if not _ignored(session, m)]
    if len(wanted) <= 1:
        one = message_receive(session=session, msg=wanted[0]) if wanted else None
        return [one] if one is not None else []
    reopened: set[int] = set()
    replies: list[Message] = []
    try:
        with transaction.atomic():
            created = _receive_many(session, wanted, reopened, replies)
            webhooks.webhook_messages_stored(created)
            push.push_messages_stored(created)
    except IntegrityError:
        # Someone stored one of them between our check and our insert: one by one,
        # each deduped on its own.
        stored = [message_receive(session=session, msg=m) for m in wanted]
        return [m for m in stored if m is not None]
    metrics.MESSAGES_IN.inc(len(created))
    events.messages_created(created)
    _announce(replies)
    _route(created, reopened)
    return created


def _receive_many(
    session: WhatsAppSession,
    msgs: list[InboundMessage],
    reopened: set[int],
    replies: list[Message],
) -> list[Message]:
    # Contacts and conversations: once per address, in the order first seen, with the
    # name the last of its messages carried (what message after message would leave).
    addrs = [_addresses(msg) for msg in msgs]
    names: dict[_Addresses, str] = {}
    for msg, addr in zip(msgs, addrs, strict=True):
        name = "" if msg.from_me or msg.is_group else msg.push_name
        names[addr] = name or names.get(addr, "")
    conversation_of = _conversations_for(session, names)
    plan = [(msg, conversation_of[addr]) for msg, addr in zip(msgs, addrs, strict=True)]

    seen = set(
        Message.objects.filter(_by_wa_id((c.pk, msg.message_id) for msg, c in plan)).values_list(
            "conversation_id", "wa_id"
        )
    )
    quoted = [(c.pk, msg.quoted_id) for msg, c in plan if msg.quoted_id]
    replied: dict[tuple[int, str], Message] = {}
    if quoted:
        for m in Message.objects.filter(_by_wa_id(quoted)):
            replied[(m.conversation_id, m.wa_id)] = m
    new: list[tuple[InboundMessage, Message]] = []
    for msg, conversation in plan:
        key = (conversation.pk, msg.message_id)
        if key in seen:
            continue  # a replay, or a second copy in this batch
        seen.add(key)
        message = Message(conversation=conversation, **_message_fields(msg))
        message.reply_to = replied.get((conversation.pk, msg.quoted_id))
        new.append((msg, message))
    if not new:
        return []
    Message.objects.bulk_create([m for _msg, m in new])
    # A message quoting an earlier one of the same batch: linked now both have ids.
    later = []
    for msg, message in new:
        replied.setdefault((message.conversation_id, message.wa_id), message)
        if msg.quoted_id and message.reply_to is None:
            target = replied.get((message.conversation_id, msg.quoted_id))
            if target is not None and target is not message:
                message.reply_to = target
                later.append(message)
    if later:
        Message.objects.bulk_update(later, ["reply_to"])

    # Counters and preview: each conversation once.
    locked = _conversations_advance([m for _msg, m in new], live=True, reopened=reopened)
    contacts = {c.pk: c.contact for c in conversation_of.values()}
    for pk, conv in locked.items():  # the events show both: no query per conversation
        conv.contact = contacts[pk]
        conv.session = session
    stored = [m for _msg, m in new]
    replies += _automatic(session, stored, reopened)
    return stored


def _by_wa_id(keys: Iterable[tuple[int, str]]) -> Q:
    """The messages with these (conversation, WhatsApp id) keys.

    One condition per conversation, each a few lookups in the unique key's index:
    with one IN list of conversations and one of ids, PostgreSQL may read every message
    of those conversations instead.
    """
    wanted: dict[int, set[str]] = {}
    for conversation_id, wa_id in keys:
        wanted.setdefault(conversation_id, set()).add(wa_id)
    if not wanted:
        return Q(pk__in=())  # no message (an empty Q would match them all)
    return Q(*(Q(conversation_id=c, wa_id__in=ids) for c, ids in wanted.items()), _connector=Q.OR)


def history_import(*, session: WhatsAppSession, messages: Sequence[InboundMessage]) -> int:
    """Import a history batch in bulk; older than the number's history-days are dropped.

    Same dedupe as live messages (the unique WhatsApp id). History never counts
    as unread and never reopens a closed conversation. Returns how many were new.
    """
    cutoff = timezone.now() - timedelta(days=session.history_days)
    by_chat: dict[str, list[InboundMessage]] = {}
    for msg in messages:
        if msg.timestamp >= cutoff and not _ignored(session, msg):
            by_chat.setdefault(msg.chat, []).append(msg)
    if not by_chat:
        return 0
    with transaction.atomic():
        # A chat's contact and conversation from its first message's address, all the
        # known ones in two queries (the live batch path's lookup).
        addr_of = {chat: _addresses(chat_msgs[0]) for chat, chat_msgs in by_chat.items()}
        conversation_of = _conversations_for(session, dict.fromkeys(addr_of.values(), ""))
        plan = [
            (msg, conversation_of[addr_of[chat]])
            for chat, chat_msgs in by_chat.items()
            for msg in chat_msgs
        ]
        seen = set(
            Message.objects.filter(
                _by_wa_id((c.pk, msg.message_id) for msg, c in plan)
            ).values_list("conversation_id", "wa_id")
        )
        rows = []
        for msg, conversation in plan:
            key = (conversation.pk, msg.message_id)
            if key in seen:
                continue  # stored already, or twice in this batch
            seen.add(key)
            rows.append(Message(conversation=conversation, **_message_fields(msg)))
        # A live copy stored between the check and here is skipped, not an error (and is
        # counted as new: the count only goes to the log).
        Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        locked = _conversations_advance(rows, live=False)
    contacts = {c.pk: c.contact for c in conversation_of.values()}
    for conv in locked.values():  # what the events show, without a query each
        conv.contact, conv.session = contacts[conv.pk], session
    created = len(rows)
    for conv in locked.values():
        events.conversation_updated(conv)
    logger.info("history imported session=%s new=%d", session.pk, created)
    return created


def message_media_stored(
    *, message_id: int, path: str, size: int, mime_type: str = ""
) -> Message | None:
    """The worker saved an inbound message's file under MEDIA_ROOT (``path`` is relative)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return None
        message.media.name = path
        message.file_size = size
        if mime_type and not message.mime_type:
            message.mime_type = mime_type
        message.media_status = Message.MediaStatus.READY
        message.save(
            update_fields=["media", "file_size", "mime_type", "media_status", "updated_at"]
        )
        events.message_updated(message)
    return message


def message_media_failed(*, message_id: int, error: str) -> None:
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return
        message.media_status = Message.MediaStatus.FAILED
        message.error = error[:500]
        message.save(update_fields=["media_status", "error", "updated_at"])
        events.message_updated(message)


_STATUS_ORDER = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}


def message_receipt(
    *, session: WhatsAppSession, message_ids: Iterable[str], status: str
) -> list[Message]:
    """Move our messages forward to delivered/read ("played" counts as read). Never back."""
    target = Message.Status.READ if status in {"read", "played"} else Message.Status.DELIVERED
    earlier = [s for s, rank in _STATUS_ORDER.items() if rank < _STATUS_ORDER[target]]
    with transaction.atomic():
        qs = Message.objects.filter(
            conversation__session=session,
            wa_id__in=list(message_ids),
            direction=Message.Direction.OUTBOUND,
            status__in=earlier,
        )
        changed = list(qs.select_related("conversation"))
        now = timezone.now()
        if changed:
            Message.objects.filter(pk__in=[m.pk for m in changed]).update(
                status=target, in_flight=False, updated_at=now
            )
        for m in changed:
            # The fragment carries updated_at: pages keep the newest version they saw.
            m.status, m.updated_at = target, now
            events.message_updated(m)
    return changed
