"""Queues in Django admin: managed there too, by the same rules, names escaped."""

from __future__ import annotations

import pytest

from conversations import services
from conversations.models import Queue
from conversations.services import QueueFields

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-root")


def test_admin_creates_a_queue_through_the_services(client, staff, number, bob):
    client.force_login(staff)
    response = client.post(
        "/admin/conversations/queue/add/",
        {
            "session": number.pk,
            "name": "Vendas",
            "color": "#1e88e5",
            "position": "1",
            "assignment": "round_robin",
            "agent_users": [bob.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    queue = Queue.objects.get(name="Vendas")
    assert list(queue.agents.all()) == [bob]


def test_admin_refuses_a_second_level(client, staff, number):
    top = services.queue_create(session=number, fields=QueueFields(name="Top"))
    child = services.queue_create(session=number, fields=QueueFields(name="Kid", parent_id=top.pk))
    client.force_login(staff)
    response = client.post(
        "/admin/conversations/queue/add/",
        {
            "session": number.pk,
            "name": "Grandkid",
            "color": "#1e88e5",
            "position": "1",
            "assignment": "off",
            "parent": child.pk,
        },
    )
    assert response.status_code == 200
    assert "one level" in response.content.decode()
    assert not Queue.objects.filter(name="Grandkid").exists()


def test_admin_escapes_queue_names(client, staff, number):
    services.queue_create(session=number, fields=QueueFields(name="<script>x</script>"))
    client.force_login(staff)
    page = client.get("/admin/conversations/queue/").content.decode()
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


def test_admin_deletes_selected_queues_through_the_service(client, staff, number, monkeypatch):
    """ "Delete selected" deletes each queue as deleting one does (a sub-queue chosen
    with its parent goes with the parent), so the number's routing hears of it."""
    from conversations.services import queue_create, routing
    from conversations.services import queues as queue_services

    parent = queue_create(session=number, fields=QueueFields(name="Vendas"))
    child = queue_create(session=number, fields=QueueFields(name="Novos", parent_id=parent.pk))
    other = queue_create(session=number, fields=QueueFields(name="Suporte"))
    assert routing.session_has_queues(number.pk)  # cached now
    told = []
    real = queue_services.session_queues_changed
    monkeypatch.setattr(
        queue_services,
        "session_queues_changed",
        lambda session_id: told.append(session_id) or real(session_id),
    )
    client.force_login(staff)
    response = client.post(
        "/admin/conversations/queue/",
        {
            "action": "delete_selected",
            "_selected_action": [parent.pk, child.pk, other.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not Queue.objects.exists()
    assert told and set(told) == {number.pk}
    assert not routing.session_has_queues(number.pk)
