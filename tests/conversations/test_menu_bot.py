"""The menu bot: a new conversation gets the number's menu and lands in the queue the
customer picks (by digit or name), the default one after too many wrong answers."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from conversations import services
from conversations.models import Conversation, ConversationEvent, Message, QueueSettings
from conversations.services import QueueFields
from conversations.services.routing import normalise_answer, routing_after_inbound
from tests.factories import inbound

pytestmark = pytest.mark.django_db

PHONE = "5511977770001"


def say(number, text: str, phone: str = PHONE) -> Message:
    message = services.message_receive(session=number, msg=inbound(phone=phone, text=text))
    assert message is not None
    return message


def bot_messages(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, automatic=True)
        .order_by("pk")
        .values_list("body", flat=True)
    )


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_related("queue").get(pk=conversation.pk)


@pytest.fixture
def queues(number, bob):
    vendas = services.queue_create(
        session=number, fields=QueueFields(name="Vendas", position=1, agent_ids=(bob.pk,))
    )
    suporte = services.queue_create(
        session=number, fields=QueueFields(name="Suporte Técnico", position=2)
    )
    services.queue_settings_update(
        session=number,
        menu_enabled=True,
        menu_greeting="Olá! Escolha:",
        menu_max_attempts=3,
        default_queue_id=None,
        menu_on_reopen=True,
        agent_cap=0,
    )
    return vendas, suporte


def test_it_sends_the_menu_to_a_new_conversation(number, queues):
    conversation = say(number, "oi").conversation
    assert bot_messages(conversation) == ["Olá! Escolha:\n1 — Vendas\n2 — Suporte Técnico"]
    bot = Message.objects.get(conversation=conversation, automatic=True)
    assert bot.sent_by_id is None
    assert bot.direction == Message.Direction.OUTBOUND
    assert bot.status == Message.Status.PENDING  # in the outbox, for the worker
    assert [m.pk for m in services.outbox_pending(session_id=number.pk)] == [bot.pk]
    assert fresh(conversation).queue is None


def test_it_puts_the_conversation_in_the_queue_picked_by_digit(number, queues):
    conversation = say(number, "oi").conversation
    say(number, " 2 ")
    conversation = fresh(conversation)
    assert conversation.queue == queues[1]
    assert len(bot_messages(conversation)) == 1  # no menu after a right answer
    event = ConversationEvent.objects.get(conversation=conversation)
    assert (event.kind, event.to_queue, event.actor) == ("queue", queues[1], None)


@pytest.mark.parametrize("answer", ["suporte tecnico", "SUPORTE  TÉCNICO", "Suporte técnico!"])
def test_it_takes_the_queue_name_ignoring_accents_and_case(number, queues, answer):
    conversation = say(number, "oi").conversation
    say(number, answer)
    assert fresh(conversation).queue == queues[1]


def test_a_wrong_answer_gets_the_menu_again_then_the_default_queue(number, queues):
    conversation = say(number, "oi").conversation
    say(number, "3")
    say(number, "talvez")
    assert len(bot_messages(conversation)) == 3  # the cap: 3 menus in all
    assert fresh(conversation).queue is None
    say(number, "nenhum")
    conversation = fresh(conversation)
    assert conversation.queue == queues[0]  # no default set: the first queue
    assert len(bot_messages(conversation)) == 3


def test_the_default_queue_setting_is_where_wrong_answers_end(number, queues):
    QueueSettings.objects.filter(session=number).update(
        default_queue=queues[1], menu_max_attempts=1
    )
    conversation = say(number, "oi").conversation
    say(number, "?")
    assert fresh(conversation).queue == queues[1]


def test_a_sub_menu_nests_one_level(number, queues):
    internet = services.queue_create(
        session=number, fields=QueueFields(name="Internet", parent_id=queues[1].pk)
    )
    services.queue_create(
        session=number, fields=QueueFields(name="Telefone", position=2, parent_id=queues[1].pk)
    )
    conversation = say(number, "oi").conversation
    assert bot_messages(conversation)[0].endswith("1 — Vendas\n2 — Suporte Técnico")
    say(number, "2")
    assert bot_messages(conversation)[1] == "Suporte Técnico\n1 — Internet\n2 — Telefone"
    assert fresh(conversation).queue is None
    say(number, "x")  # wrong: the sub-menu again
    assert bot_messages(conversation)[2] == bot_messages(conversation)[1]
    say(number, "internet")
    assert fresh(conversation).queue == internet


def test_menus_nest_no_deeper(number, queues):
    child = services.queue_create(
        session=number, fields=QueueFields(name="Internet", parent_id=queues[1].pk)
    )
    with pytest.raises(Exception, match="one level"):
        services.queue_create(session=number, fields=QueueFields(name="Fibra", parent_id=child.pk))


def test_one_queue_gets_no_menu(number):
    only = services.queue_create(session=number, fields=QueueFields(name="Atendimento"))
    conversation = say(number, "oi").conversation
    assert bot_messages(conversation) == []
    assert fresh(conversation).queue == only


def test_no_queue_no_menu(number):
    conversation = say(number, "oi").conversation
    assert bot_messages(conversation) == []
    assert fresh(conversation).queue is None


def test_a_conversation_in_a_queue_costs_the_bot_no_query(
    number, queues, django_assert_num_queries
):
    say(number, "oi")
    message = say(number, "1")
    assert message.conversation.queue_id is None  # the row as the message found it
    later = say(number, "mais uma coisa")
    assert later.conversation.queue_id == queues[0].pk
    with django_assert_num_queries(0):
        routing_after_inbound(messages=[later], reopened=set())
    assert len(bot_messages(later.conversation)) == 1


def test_an_open_conversation_in_a_queue_never_gets_the_menu_again(number, queues):
    conversation = say(number, "oi").conversation
    say(number, "1")
    for text in ("2", "oi", "menu"):
        say(number, text)
    assert len(bot_messages(conversation)) == 1
    assert fresh(conversation).queue == queues[0]


def test_a_reopened_conversation_gets_the_menu_again(number, queues, bob):
    conversation = say(number, "oi").conversation
    say(number, "1")
    conversation = fresh(conversation)
    services.conversation_assign(conversation=conversation, assignee=bob)
    services.conversation_set_status(conversation=conversation, status="closed")
    say(number, "voltei")
    conversation = fresh(conversation)
    assert conversation.status == "open"
    assert conversation.queue is None
    assert conversation.assigned_to is None
    assert len(bot_messages(conversation)) == 2
    say(number, "2")
    assert fresh(conversation).queue == queues[1]


def test_reopened_keeps_its_queue_when_the_setting_is_off(number, queues):
    QueueSettings.objects.filter(session=number).update(menu_on_reopen=False)
    conversation = say(number, "oi").conversation
    say(number, "1")
    services.conversation_set_status(conversation=fresh(conversation), status="closed")
    say(number, "voltei")
    assert fresh(conversation).queue == queues[0]
    assert len(bot_messages(conversation)) == 1


def test_the_batch_path_runs_the_bot_too(number, queues):
    services.message_receive_batch(
        session=number,
        msgs=[inbound(phone="5511900000101", text="a"), inbound(phone="5511900000102", text="b")],
    )
    assert Message.objects.filter(automatic=True).count() == 2


def test_a_conversation_an_agent_started_gets_no_menu(number, queues, bob):
    conversation = services.conversation_open(session=number, phone=PHONE)
    services.message_queue_outbound(user=bob, conversation=conversation, text="Olá, é a loja")
    say(number, "Oi! Pode falar")
    assert bot_messages(conversation) == []
    assert fresh(conversation).queue == queues[0]


def test_groups_get_no_menu(number, queues):
    group = "120363000000000001@g.us"
    services.message_receive(
        session=number, msg=inbound(text="oi", chat=group, is_group=True, push_name="Zé")
    )
    assert not Message.objects.filter(automatic=True).exists()


def test_the_thread_marks_the_bot_message_as_automatic(number, queues):
    conversation = say(number, "oi").conversation
    bot = Message.objects.select_related("conversation__contact").get(
        conversation=conversation, automatic=True
    )
    html = render_to_string("conversations/_message.html", {"m": bot})
    assert "Automatic message" in html
    assert "Sent from the phone" not in html


def test_queue_names_are_escaped_in_the_system_line(number, bob):
    queue = services.queue_create(session=number, fields=QueueFields(name="<b>x</b>"))
    conversation = say(number, "oi").conversation
    event = ConversationEvent.objects.select_related("to_queue").get(conversation=conversation)
    assert event.to_queue == queue
    html = render_to_string("conversations/_system_line.html", {"e": event})
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>" not in html


def test_answers_are_normalised():
    assert normalise_answer("  Suporte   TÉCNICO. ") == "suporte tecnico"
    assert normalise_answer("Ação") == "acao"
