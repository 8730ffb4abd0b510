"""A number's runner without the simulator: ``command_for`` alone, and ``handle`` fed
events by hand with a fake child."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import services as conv_services
from conversations.models import Contact, Conversation, Message
from conversations.services import automation
from whatsapp import services
from whatsapp.config import WorkerConfig
from whatsapp.dbthreads import Database
from whatsapp.gateway import base
from whatsapp.models import WhatsAppSession
from whatsapp.runner import NumberRunner, command_for

CUSTOMER = "5511988880001@s.whatsapp.net"


def _outgoing(**fields) -> Message:
    session = WhatsAppSession(pk=1, phone_number="5511900000001")
    contact = Contact(session=session, jid=CUSTOMER)
    conversation = Conversation(session=session, contact=contact)
    return Message(
        pk=7,
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        wa_id="OUT1",
        **fields,
    )


def test_a_text_reply_is_a_plain_send():
    cmd = command_for(_outgoing(kind=Message.Kind.TEXT, body="hello"), "5511900000001")
    assert cmd == base.SendText(to=CUSTOMER, text="hello", message_id="OUT1")


def test_a_reply_quoting_a_message_names_who_wrote_it():
    theirs = Message(direction=Message.Direction.INBOUND, body="can you deliver?", sender_jid="")
    cmd = command_for(_outgoing(body="yes", reply_to=theirs, quoted_wa_id="IN1"), "5511900000001")
    assert (cmd.quoted_id, cmd.quoted_sender, cmd.quoted_text) == (
        "IN1",
        CUSTOMER,
        "can you deliver?",
    )

    ours = Message(direction=Message.Direction.OUTBOUND, body="it is on its way")
    cmd = command_for(_outgoing(body="again", reply_to=ours, quoted_wa_id="OUT0"), "5511900000001")
    assert cmd.quoted_sender == "5511900000001@s.whatsapp.net"


def test_a_location_and_a_contact_card_have_commands_of_their_own():
    m = _outgoing(
        kind=Message.Kind.LOCATION,
        latitude=-23.55,
        longitude=-46.63,
        location_name="Sé",
        body="Praça da Sé",
        quoted_wa_id="IN1",
    )
    assert command_for(m, "5511900000001") == base.SendLocation(
        to=CUSTOMER,
        message_id="OUT1",
        latitude=-23.55,
        longitude=-46.63,
        name="Sé",
        address="Praça da Sé",
        quoted_id="IN1",
    )
    card = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL;waid=5511977770001:+5511977770001\nEND:VCARD"
    m = _outgoing(kind=Message.Kind.CONTACT, body=card)
    assert command_for(m, "5511900000001") == base.SendContact(
        to=CUSTOMER, message_id="OUT1", display_name="Ana", vcard=card
    )


def test_a_file_is_sent_from_where_it_is_stored(settings):
    m = _outgoing(
        kind=Message.Kind.DOCUMENT,
        body="the invoice",
        media="2025/01/out-7.pdf",
        file_name="Invoice.pdf",
        mime_type="application/pdf",
    )
    cmd = command_for(m, "5511900000001")
    assert cmd == base.SendMedia(
        to=CUSTOMER,
        kind=base.MessageKind.DOCUMENT,
        path=str(Path(settings.MEDIA_ROOT) / "2025/01/out-7.pdf"),
        message_id="OUT1",
        caption="the invoice",
        filename="Invoice.pdf",
        mimetype="application/pdf",
    )


class FakeChild:
    """Answers a download by writing the file, as a gateway child does."""

    def __init__(self) -> None:
        self.requests: list[base.Command] = []

    async def request(self, command: base.Command, timeout: float) -> object:
        self.requests.append(command)
        assert isinstance(command, base.DownloadMedia)
        Path(command.dest).write_bytes(b"file")
        return base.DownloadResult(path=command.dest, size=4)


@pytest.fixture
def db():
    database = Database()
    yield database
    database.close()


@pytest.fixture
def runner(alice, db):
    row = services.session_create(owner=alice, name="Support")
    dropped: list[int] = []
    runner = NumberRunner(
        config=WorkerConfig(gateway="simulator"),
        db=db,
        session_path="",
        row=row,
        token=uuid.uuid4(),
        drop=dropped.append,
    )
    runner.child = FakeChild()
    runner.dropped = dropped
    return runner


def _inbound(message_id: str, **fields) -> base.InboundMessage:
    return base.InboundMessage(
        message_id=message_id,
        chat=CUSTOMER,
        sender=CUSTOMER,
        timestamp=timezone.now(),
        **{"kind": base.MessageKind.TEXT, "text": "hi", **fields},
    )


@pytest.mark.django_db(transaction=True)
async def test_an_inbound_message_handled_twice_is_stored_once(runner):
    event = _inbound("IN1")
    await runner.handle(event)
    await runner.handle(event)

    bodies = await sync_to_async(
        lambda: list(Message.objects.filter(wa_id="IN1").values_list("body", flat=True))
    )()
    assert bodies == ["hi"]
    assert runner.last_event_at


@pytest.mark.django_db(transaction=True)
async def test_a_received_file_is_fetched_by_the_child(runner):
    await runner.handle(
        _inbound("IN2", kind=base.MessageKind.IMAGE, mimetype="image/png", media_ref=b"ref")
    )
    await asyncio.gather(*runner._media_tasks)

    m = await sync_to_async(Message.objects.get)(wa_id="IN2")
    assert m.media_status == Message.MediaStatus.READY
    assert [type(c) for c in runner.child.requests] == [base.DownloadMedia]
    assert Path(m.media.path).read_bytes() == b"file"


@pytest.mark.django_db(transaction=True)
async def test_state_events_update_the_number(runner):
    await runner.handle(base.StateChanged(state=base.ConnState.CONNECTED))
    assert runner.connected and runner.row.status == WhatsAppSession.Status.CONNECTED
    status = await sync_to_async(lambda: WhatsAppSession.objects.get(pk=runner.session_id).status)()
    assert status == WhatsAppSession.Status.CONNECTED
    assert runner.dropped == []

    await runner.handle(base.StateChanged(state=base.ConnState.LOGGED_OUT, detail="unlinked"))
    status = await sync_to_async(lambda: WhatsAppSession.objects.get(pk=runner.session_id).status)()
    assert status == WhatsAppSession.Status.LOGGED_OUT
    assert runner.dropped == [runner.session_id]


@pytest.mark.django_db(transaction=True)
async def test_link_pressed_again_while_whatsapp_is_unreachable_starts_a_fresh_client(runner):
    await runner.handle(
        base.StateChanged(state=base.ConnState.DISCONNECTED, detail="failed to dial: no such host")
    )
    await runner._flush()
    assert not runner._restart.is_set()  # the client retries by itself, with its back-off

    runner.row = await sync_to_async(services.session_request_link)(session=runner.row)
    await runner._flush()
    assert runner._restart.is_set() and runner._relink  # at once, as a fresh try
    runner._restart.clear()
    await runner._flush()
    assert not runner._restart.is_set()  # once per request


@pytest.mark.django_db(transaction=True)
async def test_link_pressed_again_while_a_qr_code_shows_keeps_the_client(runner):
    await runner.handle(base.QRCode(code="2@abc"))
    runner.row = await sync_to_async(services.session_request_link)(session=runner.row)
    await runner._flush()
    assert not runner._restart.is_set()


class SendingChild:
    """Accepts every send, as a connected gateway child does."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def request(self, command: base.Command, timeout: float) -> object:
        assert isinstance(command, base.SendText)
        self.sent.append(command.text)
        return base.SendResult(message_id=command.message_id, timestamp=timezone.now())


@pytest.mark.django_db(transaction=True)
async def test_automatic_messages_are_paced_per_number_and_wait_rather_than_drop(
    runner, alice, bob, monkeypatch
):
    """At most ``auto_rate_per_minute`` automatic messages a minute; the rest stay pending
    for the next minute, and agents' replies are never held back."""

    def arrange() -> Conversation:
        WhatsAppSession.objects.filter(pk=runner.session_id).update(lease_token=runner.token)
        conf = automation.number_settings_get(session=runner.row)
        values = {f: getattr(conf, f) for f in automation.SETTINGS_FIELDS}
        automation.number_settings_update(
            session=runner.row, by=alice, values={**values, "auto_rate_per_minute": 2}
        )
        automation.keyword_rule_create(
            session=runner.row, values={"match": "contains", "pattern": "oi", "answer": "Olá!"}
        )
        for i in range(4):
            jid = f"55119888800{i:02d}@s.whatsapp.net"
            conv_services.message_receive(
                session=runner.row,
                msg=base.InboundMessage(
                    message_id=f"IN-{i}",
                    chat=jid,
                    sender=jid,
                    timestamp=timezone.now(),
                    kind=base.MessageKind.TEXT,
                    text="oi",
                ),
            )
        conversation = Conversation.objects.select_related("contact", "session").last()
        conv_services.message_queue_outbound(user=alice, conversation=conversation, text="Oi!")
        return conversation

    await sync_to_async(arrange)()
    runner.state = base.ConnState.CONNECTED
    runner.child = SendingChild()
    clock = [1000.0]
    monkeypatch.setattr("whatsapp.runner.time.monotonic", lambda: clock[0])

    await runner._send_outbox()

    def statuses() -> list[tuple[bool, str]]:
        return sorted(
            Message.objects.filter(direction=Message.Direction.OUTBOUND).values_list(
                "automatic", "status"
            )
        )

    assert runner.child.sent.count("Olá!") == 2
    # The agent's reply waits only behind its own conversation's automatic answer.
    assert await sync_to_async(statuses)() in (
        [(False, "pending"), (True, "pending"), (True, "pending"), (True, "sent"), (True, "sent")],
        [(False, "sent"), (True, "pending"), (True, "pending"), (True, "sent"), (True, "sent")],
    )
    clock[0] += 61
    await runner._send_outbox()
    await runner._send_outbox()
    assert runner.child.sent.count("Olá!") == 4 and "Oi!" in runner.child.sent
    assert await sync_to_async(statuses)() == [(False, "sent")] + [(True, "sent")] * 4
