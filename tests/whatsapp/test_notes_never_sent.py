"""A private note never reaches WhatsApp, end to end: the worker running a number with
the simulator sends the replies around a note, and the note never shows at /api/sent."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import services as conv_services
from conversations.models import Message
from tests.whatsapp.conftest import link, running_worker, wait_for
from whatsapp.models import WhatsAppSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

OWN = "5511900000001"


def _write(bob, session, phone: str) -> tuple[int, int, int]:
    session = WhatsAppSession.objects.get(pk=session.pk)
    conversation = conv_services.conversation_open(session=session, phone=phone)
    before = conv_services.message_queue_outbound(user=bob, conversation=conversation, text="one")
    note = conv_services.note_add(
        user=bob, conversation=conversation, text="secret note @alice", client_key="n"
    )
    after = conv_services.message_queue_outbound(user=bob, conversation=conversation, text="two")
    return before.pk, note.pk, after.pk


async def test_a_note_between_two_replies_never_reaches_the_gateway(simulator, linked, bob):
    async with running_worker():
        await link(simulator, linked, OWN)
        before, note, after = await sync_to_async(_write)(bob, linked, "5511988880001")
        await wait_for(
            lambda: Message.objects.filter(pk__in=[before, after], status="sent").count() == 2,
            what="both replies sent",
        )
        sent = simulator.control.sent(OWN)
        assert [s["text"] for s in sent] == ["one", "two"]
        assert all("secret note" not in str(s) for s in sent)

    def check() -> None:
        row = Message.objects.get(pk=note)
        assert (row.direction, row.status, row.in_flight, row.attempts) == (
            "NOTA",
            "note",
            False,
            0,
        )

    await sync_to_async(check)()
