"""message_receive_batch: several inbound messages in one transaction, with every
guarantee of message_receive (the worker's group commit under load)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.models import Contact, Conversation, Message
from conversations.services import inbound as inbound_services
from tests.factories import inbound
from tests.races import at_once
from whatsapp.gateway.base import MessageKind

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_batch_stores_every_message_in_order_with_the_counters(number):
    msgs = [inbound(message_id=f"B{i}", text=f"m{i}", timestamp=_at(i)) for i in range(5)]
    stored = services.message_receive_batch(session=number, msgs=msgs)
    assert [m.wa_id for m in stored] == ["B0", "B1", "B2", "B3", "B4"]
    assert list(Message.objects.order_by("pk").values_list("wa_id", flat=True)) == [
        "B0",
        "B1",
        "B2",
        "B3",
        "B4",
    ]
    conv = Conversation.objects.get()
    assert conv.unread_count == 5
    assert conv.last_message_preview == "m4"
    assert conv.last_message_at == _at(4)
    assert Contact.objects.get().push_name == "Maria"


def test_it_matches_message_by_message(number, alice):
    """The same input through the batch and one by one leaves the same rows."""
    other = __import__("whatsapp.services", fromlist=["x"]).session_create(owner=alice, name="B")

    def feed() -> list:
        return [
            inbound(message_id="X1", text="one", timestamp=_at(2)),
            inbound(message_id="X2", phone="5511900000002", text="two", timestamp=_at(1)),
            # older than the newest seen: counts, but does not move the preview back
            inbound(message_id="X3", text="late", timestamp=_at(0)),
            inbound(message_id="X4", text="from me", from_me=True, timestamp=_at(3)),
        ]

    services.message_receive_batch(session=number, msgs=feed())
    for msg in feed():
        services.message_receive(session=other, msg=msg)

    def state(session) -> list:
        return sorted(
            Conversation.objects.filter(session=session).values_list(
                "contact__jid", "unread_count", "last_message_preview", "last_message_at", "status"
            )
        )

    assert state(number) == state(other)
    assert Message.objects.filter(conversation__session=number).count() == 4


def test_replays_are_skipped_in_the_database_and_within_the_batch(number):
    services.message_receive(session=number, msg=inbound(message_id="OLD"))
    stored = services.message_receive_batch(
        session=number,
        msgs=[
            inbound(message_id="OLD", text="again"),
            inbound(message_id="NEW"),
            inbound(message_id="NEW", text="twice in the batch"),
            inbound(message_id="NEWER"),
        ],
    )
    assert [m.wa_id for m in stored] == ["NEW", "NEWER"]
    assert Message.objects.count() == 3
    assert Conversation.objects.get().unread_count == 3
    assert Message.objects.get(wa_id="OLD").body == "hello"


def test_one_contact_and_conversation_per_contact_in_a_batch(number):
    msgs = [inbound(phone=f"55119000000{i % 3}", message_id=f"C{i}") for i in range(9)]
    services.message_receive_batch(session=number, msgs=msgs)
    assert Contact.objects.count() == 3
    assert Conversation.objects.count() == 3
    assert sorted(Conversation.objects.values_list("unread_count", flat=True)) == [3, 3, 3]


def test_a_closed_conversation_reopens(number):
    services.message_receive(session=number, msg=inbound())
    conv = Conversation.objects.get()
    services.conversation_set_status(conversation=conv, status=Conversation.Status.CLOSED)
    services.message_receive_batch(session=number, msgs=[inbound(), inbound()])
    conv.refresh_from_db()
    assert conv.status == Conversation.Status.OPEN
    assert conv.unread_count == 3


def test_only_phone_messages_leave_it_closed_and_read(number):
    services.message_receive(session=number, msg=inbound())
    conv = Conversation.objects.get()
    services.conversation_set_status(conversation=conv, status=Conversation.Status.CLOSED)
    services.message_receive_batch(
        session=number, msgs=[inbound(from_me=True), inbound(from_me=True)]
    )
    conv.refresh_from_db()
    assert conv.status == Conversation.Status.CLOSED
    assert conv.unread_count == 1


def test_quotes_link_to_stored_and_to_earlier_messages_of_the_batch(number):
    services.message_receive(session=number, msg=inbound(message_id="Q0"))
    services.message_receive_batch(
        session=number,
        msgs=[
            inbound(message_id="Q1", quoted_id="Q0"),
            inbound(message_id="Q2", quoted_id="Q1"),
            inbound(message_id="Q3", quoted_id="NOPE"),
        ],
    )
    by_id = {m.wa_id: m for m in Message.objects.all()}
    assert by_id["Q1"].reply_to_id == by_id["Q0"].pk
    assert by_id["Q2"].reply_to_id == by_id["Q1"].pk
    assert by_id["Q3"].reply_to_id is None


def test_ignored_messages_are_dropped_and_a_lone_one_goes_the_single_path(number):
    with mock.patch.object(
        inbound_services, "message_receive", wraps=services.message_receive
    ) as single:
        stored = services.message_receive_batch(
            session=number,
            msgs=[inbound(chat="status@broadcast"), inbound(message_id="ONLY")],
        )
    assert [m.wa_id for m in stored] == ["ONLY"]
    assert single.call_count == 1


def test_events_go_out_after_commit_once_per_new_message(
    number, django_capture_on_commit_callbacks
):
    with (
        mock.patch("realtime.events._push_rows") as push,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        from django.db import transaction

        with transaction.atomic():
            services.message_receive_batch(
                session=number,
                msgs=[inbound(message_id="E1"), inbound(message_id="E1"), inbound(message_id="E2")],
            )
            assert push.call_count == 0  # nothing before commit
    assert len(callbacks) == 1  # one broadcast for the batch...
    assert push.call_count == 2  # ...of one frame per new message


def test_a_race_on_insert_falls_back_to_one_by_one(number):
    """Another writer stores one of the batch between our check and our insert."""
    real = Message.objects.bulk_create

    def racing_bulk_create(objs, *args, **kwargs):
        first = objs[0]
        Message.objects.create(
            conversation=first.conversation,
            wa_id=first.wa_id,
            direction=first.direction,
            status=first.status,
        )
        return real(objs, *args, **kwargs)

    with mock.patch.object(Message.objects, "bulk_create", side_effect=racing_bulk_create):
        stored = services.message_receive_batch(
            session=number, msgs=[inbound(message_id="R1"), inbound(message_id="R2")]
        )
    # R1 was stored by the other writer (and rolled back with our transaction): the
    # fallback stores both, each once.
    assert sorted(Message.objects.values_list("wa_id", flat=True)) == ["R1", "R2"]
    assert [m.wa_id for m in stored] == ["R1", "R2"]
    assert Conversation.objects.get().unread_count == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_make_one_conversation(postgres_only, number):
    _, errors = at_once(
        lambda i: services.message_receive_batch(
            session=number, msgs=[inbound(message_id=f"K{i}-{j}") for j in range(10)]
        ),
        8,
    )
    assert errors == []
    assert Contact.objects.count() == 1
    conv = Conversation.objects.get()
    assert Message.objects.count() == 80
    assert conv.unread_count == 80


def test_known_and_new_contacts_mix_in_one_batch(number, django_assert_num_queries):
    services.message_receive(session=number, msg=inbound(phone="5511900000001"))
    stored = services.message_receive_batch(
        session=number,
        msgs=[
            inbound(phone="5511900000001", message_id="K1"),
            inbound(phone="5511900000002", message_id="N1", push_name="Ana"),
            inbound(phone="5511900000001", message_id="K2"),
            inbound(phone="5511900000002", message_id="N2", push_name="Ana"),
        ],
    )
    with django_assert_num_queries(0):  # what the events render is already there
        phones = [(m.wa_id, m.conversation.contact.phone) for m in stored]
        assert {m.conversation.session.name for m in stored} == {"Support"}
    assert phones == [
        ("K1", "5511900000001"),
        ("N1", "5511900000002"),
        ("K2", "5511900000001"),
        ("N2", "5511900000002"),
    ]
    assert Contact.objects.count() == 2
    conv_of = {c.contact.phone: c for c in Conversation.objects.select_related("contact")}
    assert conv_of["5511900000001"].unread_count == 3
    assert conv_of["5511900000002"].unread_count == 2
    assert conv_of["5511900000002"].contact.push_name == "Ana"


def test_a_known_contact_without_a_conversation_gets_one(number):
    contact = Contact.objects.create(
        session=number, jid="5511900000001@s.whatsapp.net", phone="5511900000001"
    )
    services.message_receive_batch(
        session=number,
        msgs=[inbound(phone="5511900000001"), inbound(phone="5511900000002")],
    )
    assert Contact.objects.count() == 2
    assert Conversation.objects.get(contact=contact).unread_count == 1


def test_lids_and_phones_resolve_as_message_by_message(number, alice):
    """Contacts first seen by LID, then by phone, within the batch and before it."""
    other = __import__("whatsapp.services", fromlist=["x"]).session_create(owner=alice, name="B")
    new_lid, new_phone = "111@lid", "5511900000001@s.whatsapp.net"
    old_lid, old_phone = "222@lid", "5511900000002@s.whatsapp.net"
    for session in (number, other):
        services.message_receive(
            session=session, msg=inbound(chat=old_lid, sender=old_lid, message_id="O0")
        )

    def feed() -> list:
        return [
            inbound(chat=new_lid, sender=new_lid, message_id="N1"),
            inbound(chat=new_lid, sender=new_lid, sender_alt=new_phone, message_id="N2"),
            inbound(chat=new_phone, sender=new_phone, message_id="N3", push_name="Ana"),
            inbound(chat=old_lid, sender=old_lid, sender_alt=old_phone, message_id="O1"),
            inbound(chat=old_phone, sender=old_phone, message_id="O2"),
            inbound(chat=old_lid, sender=old_lid, message_id="O3"),
        ]

    services.message_receive_batch(session=number, msgs=feed())
    for msg in feed():
        services.message_receive(session=other, msg=msg)

    def state(session) -> list:
        return sorted(
            (c.jid, c.lid, c.phone, c.push_name, c.conversations.get().messages.count())
            for c in Contact.objects.filter(session=session)
        )

    assert state(number) == state(other)
    assert state(number) == [
        (new_phone, new_lid, "5511900000001", "Ana", 3),
        (old_phone, old_lid, "5511900000002", "Maria", 4),
    ]


def test_a_batch_from_known_contacts_costs_queries_per_conversation_not_per_message(
    number, django_assert_num_queries
):
    phones = ["5511900000001", "5511900000002", "5511900000003"]
    for phone in phones:
        services.message_receive(session=number, msg=inbound(phone=phone))
    with mock.patch.object(inbound_services.events, "messages_created"):
        for size in (12, 30):  # one INSERT each, even where SQLite splits long ones
            # savepoint, contacts, conversations, seen, insert, lock, release, and one
            # counter update per conversation.
            with django_assert_num_queries(7 + len(phones)):
                services.message_receive_batch(
                    session=number, msgs=[inbound(phone=phones[i % 3]) for i in range(size)]
                )
    assert Message.objects.count() == 3 + 12 + 30


def test_the_same_whatsapp_id_in_another_conversation_is_not_a_replay(number):
    services.message_receive(session=number, msg=inbound(phone="5511900000001", message_id="S"))
    stored = services.message_receive_batch(
        session=number,
        msgs=[
            inbound(phone="5511900000002", message_id="S"),
            inbound(phone="5511900000001", message_id="S"),
        ],
    )
    assert [m.conversation.contact.phone for m in stored] == ["5511900000002"]


def test_media_refs_are_stored_with_the_batch(number):
    services.message_receive_batch(
        session=number,
        msgs=[
            inbound(message_id="I1", kind=MessageKind.IMAGE, text="", media_ref=b"\x00ref\xff"),
            inbound(message_id="T1"),
        ],
    )
    image, text = Message.objects.get(wa_id="I1"), Message.objects.get(wa_id="T1")
    assert bytes(image.media_ref) == b"\x00ref\xff"
    assert image.media_status == Message.MediaStatus.DOWNLOADING
    assert text.media_ref is None


def test_postgres_inserts_the_batch_as_one_unnest(postgres_only, number):
    """The cheap form of a multi-row INSERT: one array per column, not a placeholder per
    value (a field with get_placeholder, such as a plain BinaryField, turns it off)."""
    table = Message._meta.db_table
    with CaptureQueriesContext(connection) as ctx:
        services.message_receive_batch(
            session=number,
            msgs=[inbound(kind=MessageKind.IMAGE, media_ref=b"ref"), inbound(), inbound()],
        )
    inserts = [
        q["sql"] for q in ctx.captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"')
    ]
    assert len(inserts) == 1
    assert "UNNEST" in inserts[0]
