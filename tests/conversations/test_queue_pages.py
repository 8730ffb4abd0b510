"""The queues page, the availability switch and moving a conversation between queues:
what each user may see and do."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import services
from conversations.models import AgentPresence, Conversation, Queue, QueueSettings
from conversations.services import QueueFields
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db


def _as(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def queue(number, bob):
    return services.queue_create(
        session=number, fields=QueueFields(name="<i>Vendas</i>", agent_ids=(bob.pk,))
    )


@pytest.fixture
def other_number(charlie):
    return whatsapp_services.session_create(owner=charlie, name="Elsewhere")


def test_the_owner_creates_queues_and_the_menu_from_the_page(client, number, alice, bob):
    _as(client, alice)
    response = client.post(
        f"/conversations/queues/number/{number.pk}/add/",
        {
            "name": "Vendas",
            "color": "#1e88e5",
            "position": "1",
            "assignment": "round_robin",
            "agent_ids": [str(bob.pk)],
        },
    )
    assert response.status_code == 302
    queue = Queue.objects.get(session=number, name="Vendas")
    assert (queue.color, queue.assignment) == ("#1e88e5", "round_robin")
    assert list(queue.agents.all()) == [bob]
    response = client.post(
        f"/conversations/queues/number/{number.pk}/settings/",
        {
            "menu_enabled": "on",
            "menu_greeting": "Olá!",
            "menu_max_attempts": "2",
            "default_queue_id": str(queue.pk),
            "agent_cap": "5",
        },
    )
    assert response.status_code == 302
    conf = QueueSettings.objects.get(session=number)
    assert (conf.menu_greeting, conf.menu_max_attempts, conf.agent_cap) == ("Olá!", 2, 5)
    assert conf.default_queue == queue and not conf.menu_on_reopen
    page = client.get("/conversations/queues/").content.decode()
    assert 'value="Vendas"' in page


def test_queue_names_are_escaped_on_the_pages(client, number, queue, alice, bob, conversation):
    page = _as(client, alice).get("/conversations/queues/").content.decode()
    assert "<i>Vendas</i>" not in page and "&lt;i&gt;Vendas&lt;/i&gt;" in page
    inbox = _as(Client(), bob).get(f"/conversations/{conversation.pk}/").content.decode()
    assert "<i>Vendas</i>" not in inbox
    assert "&lt;i&gt;Vendas&lt;/i&gt;" in inbox  # the filter and the move menu
    assert '"name": "\\u003Ci\\u003EVendas\\u003C/i\\u003E"' in inbox  # the queue map


def test_a_bad_queue_is_refused_with_a_message(client, number, alice):
    _as(client, alice)
    response = client.post(
        f"/conversations/queues/number/{number.pk}/add/",
        {"name": "", "color": "#1e88e5", "position": "1", "assignment": "off"},
        follow=True,
    )
    assert "Enter the queue" in response.content.decode()
    assert not Queue.objects.exists()


def test_an_agent_sees_their_queues_and_manages_none(client, number, queue, bob):
    _as(client, bob)
    page = client.get("/conversations/queues/").content.decode()
    assert "&lt;i&gt;Vendas&lt;/i&gt;" in page
    assert "queue-edit" not in page
    for path in (
        f"/conversations/queues/number/{number.pk}/add/",
        f"/conversations/queues/number/{number.pk}/settings/",
        f"/conversations/queues/{queue.pk}/",
        f"/conversations/queues/{queue.pk}/delete/",
    ):
        assert client.post(path, {"name": "x"}).status_code == 404, path
    assert Queue.objects.filter(pk=queue.pk, name="<i>Vendas</i>").exists()


def test_an_outsider_can_touch_nothing(client, number, queue, charlie, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(queue=None)
    _as(client, charlie)
    assert "Vendas" not in client.get("/conversations/queues/").content.decode()
    assert client.post(f"/conversations/queues/{queue.pk}/delete/").status_code == 404
    response = client.post(f"/conversations/{conversation.pk}/queue/", {"queue_id": queue.pk})
    assert response.status_code == 404
    assert Conversation.objects.get(pk=conversation.pk).queue is None


def test_an_agent_moves_a_conversation_between_queues(client, number, queue, bob, conversation):
    _as(client, bob)
    response = client.post(f"/conversations/{conversation.pk}/queue/", {"queue_id": queue.pk})
    assert response.status_code == 302
    assert Conversation.objects.get(pk=conversation.pk).queue == queue
    response = client.post(
        f"/conversations/{conversation.pk}/queue/", {"queue_id": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Conversation.objects.get(pk=conversation.pk).queue is None


def test_a_queue_of_another_number_is_refused(client, number, bob, conversation, other_number):
    foreign = services.queue_create(session=other_number, fields=QueueFields(name="Theirs"))
    _as(client, bob)
    response = client.post(f"/conversations/{conversation.pk}/queue/", {"queue_id": foreign.pk})
    assert response.status_code == 404


def test_the_inbox_filters_by_queue(client, number, queue, alice, conversation):
    services.queue_create(session=number, fields=QueueFields(name="Suporte"))
    services.conversation_move(conversation=conversation, queue=queue, by=alice)
    other = services.message_receive(session=number, msg=inbound(phone="5511911112222"))
    _as(client, alice)
    page = client.get(f"/?queue={queue.pk}").content.decode()
    assert f'id="conversation-{conversation.pk}"' in page
    assert other is not None and f'id="conversation-{other.conversation_id}"' not in page


def test_the_header_switch_sets_availability(client, bob):
    _as(client, bob)
    page = client.get("/").content.decode()
    assert 'id="availability"' in page and "is-away" in page
    response = client.post(
        "/conversations/availability/", {"available": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "is-available" in response.content.decode()
    assert AgentPresence.objects.get(user=bob).available
    response = client.post(
        "/conversations/availability/", {"available": "0", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert not AgentPresence.objects.get(user=bob).available


def test_pages_need_a_login(client, queue):
    assert client.get("/conversations/queues/").status_code == 302
    assert client.post("/conversations/availability/", {"available": "1"}).status_code == 302


def test_older_pages_bring_their_system_lines(client, number, queue, alice, conversation):
    suporte = services.queue_create(session=number, fields=QueueFields(name="Suporte"))
    services.conversation_move(conversation=conversation, queue=suporte, by=alice)
    for i in range(60):
        services.message_receive(session=number, msg=inbound(text=f"m{i}"))
    _as(client, alice)
    thread = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert 'class="sysline"' not in thread  # the move came before this page
    first = Conversation.objects.get(pk=conversation.pk).messages.order_by("pk")[10]
    older = client.get(f"/conversations/{conversation.pk}/messages/?before={first.pk}")
    # it came in by itself (one queue then), and alice moved it
    html = older.content.decode()
    assert html.count('class="sysline"') == 2 and "Moved from" in html


def test_a_thread_page_names_the_people_and_queues_of_its_system_lines(
    client, number, queue, alice, bob, charlie, conversation, django_assert_num_queries
):
    """The lines take their people from the number's members and their queues from its
    queues, both read for the page already: no query more for them, but one for a
    person who no longer works the number."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from whatsapp import services as wa

    url = f"/conversations/{conversation.pk}/"
    _as(client, alice)
    client.get(url)
    with CaptureQueriesContext(connection) as bare:
        client.get(url)
    suporte = services.queue_create(session=number, fields=QueueFields(name="Suporte <&>"))
    services.conversation_move(conversation=conversation, queue=suporte, by=alice)
    services.conversation_assign(conversation=conversation, assignee=bob, by=alice)
    with django_assert_num_queries(len(bare.captured_queries)):
        thread = client.get(url).content.decode()
    assert thread.count('class="sysline"') == 3
    assert "to Suporte &lt;&amp;&gt; · alice ·" in thread and "Assigned to bob · alice ·" in thread

    wa.session_agent_add(session=number, user=charlie)
    services.conversation_assign(conversation=conversation, assignee=charlie, by=alice)
    wa.session_agent_remove(session=number, user=charlie)
    with django_assert_num_queries(len(bare.captured_queries) + 1):
        thread = client.get(url).content.decode()
    assert thread.count('class="sysline"') == 4
    assert "Transferred from bob to charlie · alice ·" in thread
