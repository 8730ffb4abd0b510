"""The socket and queues: live tabs count for availability, and system lines reach the
people watching a thread, nobody else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import AgentPresence
from conversations.services import QueueFields
from tests.realtime.test_consumer import connect, drain, frame_of

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def sockets_of(user) -> int:
    return AgentPresence.objects.get(user=user).sockets


async def test_each_tab_counts_until_it_closes(bob):
    one, two = await connect(bob), await connect(bob)
    assert await sockets_of(bob) == 2
    await one.disconnect()
    assert await sockets_of(bob) == 1
    await two.disconnect()
    assert await sockets_of(bob) == 0


async def test_a_queue_change_is_a_system_line_for_those_watching(
    number, conversation, alice, bob, charlie
):
    queue = await database_sync_to_async(services.queue_create)(
        session=number, fields=QueueFields(name="<b>Vendas</b>")
    )
    watcher, outsider = await connect(bob), await connect(charlie)
    await watcher.send_json_to({"type": "join_conversation", "conversation_id": conversation.pk})
    await frame_of(watcher, "joined_conversation")
    await outsider.send_json_to({"type": "join_conversation", "conversation_id": conversation.pk})
    refused = await frame_of(outsider, "error")
    assert refused["code"] == "not_found"
    await database_sync_to_async(services.conversation_move)(
        conversation=conversation, queue=queue, by=alice
    )
    line = await frame_of(watcher, "system_line")
    assert line["conversation_id"] == conversation.pk
    assert "&lt;b&gt;Vendas&lt;/b&gt;" in line["html"] and "<b>" not in line["html"]
    assert await drain(outsider) == []
    await watcher.disconnect()
    await outsider.disconnect()
