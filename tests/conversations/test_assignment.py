"""Automatic assignment: round-robin among a queue's available agents, balanced, capped,
recorded; and waiting conversations handed out as agents free up."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import services
from conversations.models import AgentPresence, Conversation, ConversationEvent, Queue
from conversations.services import QueueFields
from tests.factories import inbound
from tests.races import at_once
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(django_user_model, number):
    user = django_user_model.objects.create_user(username="dave", password="pw-dave")
    whatsapp_services.session_agent_add(session=number, user=user)
    return user


@pytest.fixture
def queue(number, alice, bob, dave):
    return services.queue_create(
        session=number,
        fields=QueueFields(
            name="Suporte",
            assignment=Queue.Assignment.ROUND_ROBIN,
            agent_ids=(alice.pk, bob.pk, dave.pk),
        ),
    )


def cap(number, n: int) -> None:
    conf = services.queue_settings_get(session=number)
    services.queue_settings_update(
        session=number,
        menu_enabled=conf.menu_enabled,
        menu_greeting=conf.menu_greeting,
        menu_max_attempts=conf.menu_max_attempts,
        default_queue_id=None,
        menu_on_reopen=conf.menu_on_reopen,
        agent_cap=n,
    )


def customer(number, i: int) -> Conversation:
    message = services.message_receive(session=number, msg=inbound(phone=f"55119{i:08d}"))
    assert message is not None
    return Conversation.objects.select_related("session", "assigned_to").get(
        pk=message.conversation_id
    )


def test_it_gives_new_conversations_to_available_agents_in_turn(number, queue, bob, dave):
    services.presence_set(user=bob, available=True)
    services.presence_set(user=dave, available=True)
    owners = [customer(number, i).assigned_to for i in range(4)]
    assert owners == [bob, dave, bob, dave]  # alice is away: nothing for her
    event = ConversationEvent.objects.filter(kind="assigned").first()
    assert event is not None and event.actor is None and event.to_user == bob


def test_the_fewest_open_conversations_go_first(number, queue, bob, dave):
    services.presence_set(user=bob, available=True)
    assert [customer(number, i).assigned_to for i in (1, 2)] == [bob, bob]
    services.presence_set(user=dave, available=True)
    assert [customer(number, i).assigned_to for i in (3, 4)] == [dave, dave]
    assert customer(number, 5).assigned_to == bob  # 2-2: least recently assigned


def test_off_assigns_nobody(number, bob):
    services.queue_create(session=number, fields=QueueFields(name="Manual", agent_ids=(bob.pk,)))
    services.presence_set(user=bob, available=True)
    assert customer(number, 1).assigned_to is None


def test_at_the_cap_conversations_wait_and_go_as_agents_free_up(
    number, queue, bob, dave, django_capture_on_commit_callbacks
):
    cap(number, 1)
    services.presence_set(user=bob, available=True)
    services.presence_set(user=dave, available=True)
    a, b, waiting = (customer(number, i) for i in range(3))
    assert {a.assigned_to, b.assigned_to} == {bob, dave}
    assert waiting.assigned_to is None
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_set_status(conversation=a, status="closed")
    waiting.refresh_from_db()
    assert waiting.assigned_to == a.assigned_to


def test_a_transfer_frees_room_for_waiting_ones(
    number, queue, alice, bob, django_capture_on_commit_callbacks
):
    cap(number, 1)
    services.presence_set(user=bob, available=True)
    a, waiting = customer(number, 1), customer(number, 2)
    assert (a.assigned_to, waiting.assigned_to) == (bob, None)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_assign(conversation=a, assignee=alice, by=alice)
    waiting.refresh_from_db()
    assert waiting.assigned_to == bob
    event = ConversationEvent.objects.get(conversation=a, actor=alice)
    assert (event.from_user, event.to_user) == (bob, alice)


def test_becoming_available_takes_waiting_ones(number, queue, bob):
    waiting = customer(number, 1)
    assert waiting.assigned_to is None
    services.presence_set(user=bob, available=True)
    waiting.refresh_from_db()
    assert waiting.assigned_to == bob


def test_an_agent_whose_last_tab_closed_long_ago_is_away(number, queue, bob, settings):
    settings.VBCRM_AWAY_AFTER_SECONDS = 60
    services.presence_set(user=bob, available=True)
    services.presence_socket_opened(user_id=bob.pk)
    services.presence_socket_closed(user_id=bob.pk)
    AgentPresence.objects.filter(user=bob).update(
        last_socket_closed_at=timezone.now() - timedelta(seconds=61)
    )
    assert customer(number, 1).assigned_to is None
    assert services.presence_expire() == 1
    assert not services.presence_get(user=bob).available


def test_an_open_tab_keeps_the_agent_available(number, queue, bob, settings):
    settings.VBCRM_AWAY_AFTER_SECONDS = 60
    services.presence_set(user=bob, available=True)
    services.presence_socket_opened(user_id=bob.pk)
    services.presence_socket_opened(user_id=bob.pk)
    services.presence_socket_closed(user_id=bob.pk)
    AgentPresence.objects.filter(user=bob).update(
        last_socket_closed_at=timezone.now() - timedelta(seconds=600)
    )
    assert services.presence_expire() == 0
    assert customer(number, 1).assigned_to == bob


def test_a_removed_agent_gets_nothing(number, queue, bob):
    services.presence_set(user=bob, available=True)
    whatsapp_services.session_agent_remove(session=number, user=bob)
    assert customer(number, 1).assigned_to is None


def test_moving_to_a_queue_is_recorded_and_assigns(
    number, queue, alice, bob, django_capture_on_commit_callbacks
):
    other = services.queue_create(session=number, fields=QueueFields(name="Vendas"))
    conversation = customer(number, 1)  # two queues, menu on: waits for an answer
    assert conversation.queue is None
    services.presence_set(user=bob, available=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_move(conversation=conversation, queue=queue, by=alice)
    conversation.refresh_from_db()
    assert (conversation.queue, conversation.assigned_to) == (queue, bob)
    services.conversation_move(conversation=conversation, queue=other, by=alice)
    moves = ConversationEvent.objects.filter(conversation=conversation, kind="queue")
    assert [(e.from_queue, e.to_queue, e.actor) for e in moves.order_by("pk")] == [
        (None, queue, alice),
        (queue, other, alice),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent_cap", [0, 10])
def test_fifty_concurrent_new_conversations(
    postgres_only, number, queue, alice, bob, dave, agent_cap
):
    """Threads (each its own connection) store new conversations at once: each one is
    assigned once at most, the counts differ by one at most, and no agent passes the cap."""
    cap(number, agent_cap)
    for user in (alice, bob, dave):
        services.presence_set(user=user, available=True)
    _, errors = at_once(
        lambda i: services.message_receive(session=number, msg=inbound(phone=f"55118{i:08d}")),
        50,
    )
    assert errors == []
    assigned = ConversationEvent.objects.filter(kind="assigned").values_list(
        "conversation_id", flat=True
    )
    assert len(assigned) == len(set(assigned))  # never twice
    counts = Counter(
        Conversation.objects.filter(assigned_to__isnull=False).values_list(
            "assigned_to_id", flat=True
        )
    )
    if agent_cap:
        assert sorted(counts.values()) == [10, 10, 10]
        assert Conversation.objects.filter(assigned_to__isnull=True).count() == 20
    else:
        assert sum(counts.values()) == 50
        assert max(counts.values()) - min(counts.values()) <= 1
