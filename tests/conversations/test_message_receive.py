from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.models import Contact, Conversation, Message
from tests.factories import inbound
from tests.races import at_once
from whatsapp.gateway.base import HistoryBatch, MessageKind

pytestmark = pytest.mark.django_db


def test_it_stores_a_message_and_moves_the_counters(number):
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    msg = services.message_receive(session=number, msg=inbound(text="Oi, tudo bem?", timestamp=ts))
    conv = Conversation.objects.get()
    assert msg.direction == Message.Direction.INBOUND
    assert msg.status == Message.Status.RECEIVED
    assert conv.unread_count == 1
    assert conv.last_message_preview == "Oi, tudo bem?"
    assert conv.last_message_at == ts
    services.message_receive(
        session=number, msg=inbound(text="second", timestamp=ts + timedelta(seconds=1))
    )
    conv.refresh_from_db()
    assert conv.unread_count == 2
    assert conv.last_message_preview == "second"


def test_a_replayed_message_id_adds_nothing(number):
    first = services.message_receive(session=number, msg=inbound(message_id="ABC"))
    again = services.message_receive(session=number, msg=inbound(message_id="ABC", text="changed"))
    assert first is not None and again is None
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


def _row(message: Message) -> dict:
    """What the database holds for ``message``: every column but the id and the times
    the database or the clock gave it."""
    skip = {"id", "created_at", "updated_at"}
    return {
        f.attname: getattr(message, f.attname)
        for f in Message._meta.concrete_fields
        if f.attname not in skip
    }


def test_the_one_statement_insert_stores_what_the_orm_would(number):
    """A live message goes in with ``INSERT … ON CONFLICT DO NOTHING RETURNING id``: every
    column as the ORM's create() writes it, its times set, a reply linked."""
    from conversations.services.inbound import _UNIQUE

    quoted = services.message_receive(session=number, msg=inbound(message_id="Q1", text="first"))
    msg = inbound(
        message_id="R1",
        text="a reply, with <markup> & 'quotes'",
        quoted_id="Q1",
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    stored = services.message_receive(session=number, msg=msg)
    assert stored.pk and stored.created_at and stored.updated_at
    assert stored.reply_to_id == quoted.pk
    read = Message.objects.get(pk=stored.pk)
    assert _row(read) == _row(stored)
    assert read.created_at == stored.created_at and read.updated_at == stored.updated_at
    # the same message through the ORM, in a conversation of its own, stores the same row
    other = Conversation.objects.create(
        session=number,
        contact=Contact.objects.create(
            session=number, jid="5511977770000@s.whatsapp.net", phone="5511977770000"
        ),
    )
    fields = services.inbound._message_fields(msg)
    orm = Message.objects.create(conversation=other, reply_to=quoted, **fields)
    orm.refresh_from_db()
    assert {**_row(orm), "conversation_id": read.conversation_id} == _row(read)
    # the conflict target is the model's own unique key
    (key,) = [c for c in Message._meta.constraints if c.name == "uniq_message_wa_id"]
    assert tuple(Message._meta.get_field(f).column for f in key.fields) == _UNIQUE


@pytest.mark.parametrize("returning", [True, False], ids=["one statement", "check then insert"])
def test_a_copy_adds_nothing_on_either_insert(
    number, returning, monkeypatch, django_assert_num_queries
):
    """The copy of a stored message stores nothing, moves no counter and raises nothing:
    by the insert's ``ON CONFLICT``, or (a database that cannot return from an insert)
    by the check before it."""
    from django.db import connection

    monkeypatch.setattr(services.inbound, "_returns", lambda db: returning)
    first = services.message_receive(session=number, msg=inbound(message_id="ABC"))
    with CaptureQueriesContext(connection) as ctx:
        again = services.message_receive(session=number, msg=inbound(message_id="ABC"))
    # the contact, the conversation (locked), then the insert or the check (around them
    # the transaction's own statements, or a savepoint's in a test)
    statements = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")
    ]
    assert len(statements) == 3
    assert ("ON CONFLICT" in statements[-1]) == returning
    assert first is not None and again is None
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1
    assert services.message_receive(session=number, msg=inbound(message_id="DEF")) is not None
    assert Conversation.objects.get().unread_count == 2


def test_the_database_refuses_a_duplicate_whatsapp_id_in_a_conversation(number):
    services.message_receive(session=number, msg=inbound(message_id="ABC"))
    conv = Conversation.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            conversation=conv, wa_id="ABC", direction=Message.Direction.INBOUND, status="received"
        )


def test_a_closed_conversation_reopens_on_a_new_message(number):
    services.message_receive(session=number, msg=inbound())
    conv = Conversation.objects.get()
    services.conversation_set_status(conversation=conv, status=Conversation.Status.CLOSED)
    services.message_receive(session=number, msg=inbound())
    conv.refresh_from_db()
    assert conv.status == Conversation.Status.OPEN


def test_a_contact_seen_by_lid_and_by_phone_is_one_contact(number):
    lid, phone_jid = "987654321@lid", "5511988880001@s.whatsapp.net"
    services.message_receive(session=number, msg=inbound(chat=lid, sender=lid, message_id="L1"))
    assert Contact.objects.get().jid == lid
    services.message_receive(
        session=number,
        msg=inbound(chat=lid, sender=lid, sender_alt=phone_jid, message_id="L2"),
    )
    services.message_receive(session=number, msg=inbound(message_id="P1"))
    contact = Contact.objects.get()
    assert (contact.jid, contact.lid, contact.phone) == (phone_jid, lid, "5511988880001")
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 3


def test_group_messages_keep_the_sender_name(number):
    msg = services.message_receive(
        session=number,
        msg=inbound(
            chat="120363000000000001@g.us",
            sender="5511977770001@s.whatsapp.net",
            is_group=True,
            push_name="João",
        ),
    )
    assert msg.sender_name == "João"
    assert msg.sender_jid == "5511977770001@s.whatsapp.net"
    assert Contact.objects.get().is_group


def test_status_broadcasts_are_ignored(number):
    assert services.message_receive(session=number, msg=inbound(chat="status@broadcast")) is None
    assert not Message.objects.exists()


def test_group_chats_follow_the_number_setting(number):
    number.ignore_groups = True
    number.save()
    group = inbound(chat="1203@g.us", sender="5511977770001@s.whatsapp.net", is_group=True)
    assert services.message_receive(session=number, msg=group) is None
    assert services.message_receive(session=number, msg=inbound()) is not None


def test_a_message_sent_from_the_phone_is_outbound_and_not_unread(number):
    msg = services.message_receive(session=number, msg=inbound(from_me=True, text="from phone"))
    assert msg.direction == Message.Direction.OUTBOUND
    assert msg.sent_by is None
    assert Conversation.objects.get().unread_count == 0


def test_media_messages_wait_for_their_file(number):
    msg = services.message_receive(
        session=number,
        msg=inbound(kind=MessageKind.IMAGE, text="photo", mimetype="image/png", media_ref=b"ref"),
    )
    assert msg.media_status == Message.MediaStatus.DOWNLOADING
    assert Conversation.objects.get().last_message_preview == "📷 photo"


def test_history_is_imported_once_and_limited_by_days(number):
    now = datetime.now(UTC)
    batch = HistoryBatch(
        messages=(
            inbound(message_id="H1", timestamp=now - timedelta(days=1)),
            inbound(message_id="H2", timestamp=now - timedelta(hours=1), text="latest"),
            inbound(message_id="OLD", timestamp=now - timedelta(days=number.history_days + 1)),
        )
    )
    assert services.history_import(session=number, messages=batch.messages) == 2
    assert services.history_import(session=number, messages=batch.messages) == 0
    conv = Conversation.objects.get()
    assert set(Message.objects.values_list("wa_id", flat=True)) == {"H1", "H2"}
    assert conv.unread_count == 0
    assert conv.last_message_preview == "latest"


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_messages_make_one_conversation(postgres_only, number):
    _, errors = at_once(
        lambda i: services.message_receive(session=number, msg=inbound(message_id=f"C{i}")), 50
    )
    assert errors == []
    assert Contact.objects.count() == 1
    conv = Conversation.objects.get()
    assert Message.objects.count() == 50
    assert conv.unread_count == 50


@pytest.mark.django_db(transaction=True)
def test_one_message_received_at_once_by_many_is_stored_once(postgres_only, number):
    """Copies of one message racing past the check: the database keeps one, the others'
    transactions are given up whole (no error, nothing of theirs counted)."""
    services.message_receive(session=number, msg=inbound(message_id="FIRST"))
    results, errors = at_once(
        lambda i: services.message_receive(session=number, msg=inbound(message_id="X")), 20
    )
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert Message.objects.filter(wa_id="X").count() == 1
    assert Conversation.objects.get().unread_count == 2


@pytest.mark.django_db(transaction=True)
def test_first_messages_at_once_to_a_known_contact_count_every_one(postgres_only, number):
    """A contact known before its first conversation (an import, a group's member):
    messages racing to open it make one conversation, and each reads it locked before
    its counters move, so none of them is lost from the unread count."""
    phone = "5511988880009"
    Contact.objects.create(session=number, jid=f"{phone}@s.whatsapp.net", phone=phone)
    _, errors = at_once(
        lambda i: services.message_receive(
            session=number, msg=inbound(phone=phone, message_id=f"K{i}")
        ),
        20,
    )
    assert errors == []
    conv = Conversation.objects.get()
    assert conv.messages.count() == 20
    assert conv.unread_count == 20


def test_the_preview_is_stored_in_no_language_and_shown_in_the_readers(number):
    from django.utils import translation

    services.message_receive(
        session=number, msg=inbound(kind=MessageKind.LOCATION, text="", latitude=1.0, longitude=2.0)
    )
    conv = Conversation.objects.get()
    assert conv.last_message_preview == "📍"
    with translation.override("en"):
        assert conv.preview_display == "📍 Location"
    with translation.override("pt-br"):
        assert conv.preview_display == "📍 Localização"
    services.message_receive(
        session=number, msg=inbound(kind=MessageKind.LOCATION, text="", location_name="Praça da Sé")
    )
    conv.refresh_from_db()
    assert conv.preview_display == "📍 Praça da Sé"


def test_history_of_many_chats_reads_known_contacts_together(
    number, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    """A history batch is stored per chat, but known contacts and conversations are read
    in a fixed number of queries, and a copy seen twice (or already stored) counts once."""
    now = datetime.now(UTC)
    phones = [f"55119777700{i:02d}" for i in range(12)]
    for phone in phones[:8]:  # known before the history arrives
        services.message_receive(session=number, msg=inbound(phone=phone, message_id=f"L{phone}"))
    closed = Conversation.objects.get(contact__phone=phones[0])
    closed.status = Conversation.Status.CLOSED
    closed.save()
    history = [
        inbound(phone=phone, message_id=f"H{phone}-{j}", timestamp=now - timedelta(hours=j + 1))
        for phone in phones
        for j in range(3)
    ]
    history.append(history[0])  # the same message twice in one batch
    history.append(inbound(phone=phones[1], message_id=f"L{phones[1]}"))  # stored live already
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        # 8 known chats and 4 new ones: a new one costs its creation (about 11 queries,
        # the number's lock included), a known one nothing of its own (it used to cost
        # 7 or more: its lookups, two counts, an insert, a lock and a save)
        with django_assert_max_num_queries(10 + 4 * 11):
            added = services.history_import(session=number, messages=history)
    assert added == 12 * 3
    assert Message.objects.count() == 8 + 12 * 3
    assert len(callbacks) == 12  # one conversation_updated each
    assert Conversation.objects.count() == 12
    closed.refresh_from_db()
    assert closed.status == Conversation.Status.CLOSED  # history never reopens
    assert closed.unread_count == 1  # ...nor counts as unread (1 is the live message)
    assert services.history_import(session=number, messages=history) == 0


def test_a_live_message_s_event_is_built_without_a_query_after_the_commit(
    number, bob, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """The event waits for nothing: the number's name and the agent its list row shows
    come with the conversation's lock, inside the transaction."""
    first = services.message_receive(session=number, msg=inbound(text="hello"))
    services.conversation_assign(conversation=first.conversation, assignee=bob)
    number.refresh_from_db()
    with django_capture_on_commit_callbacks() as callbacks:
        services.message_receive(session=number, msg=inbound(text="again"))
    assert callbacks
    with django_assert_num_queries(0):
        for callback in callbacks:
            callback()
