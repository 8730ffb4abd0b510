"""Automatic replies: the greeting, the away message by business hours, keyword rules,
the loop cap, quiet after an agent's reply, never to groups or to the number itself,
stored with the customer's message (exactly once), paced per number, and idle close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, ConversationEvent, Message
from conversations.services import automation, autoreply
from tests.factories import inbound
from whatsapp.models import NumberSettings

pytestmark = pytest.mark.django_db

PHONE = "5511977770001"
ALL_WEEK_9_TO_18 = {
    "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "exceptions": [],
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    autoreply._cache.clear()
    yield
    autoreply._cache.clear()


def setup(number, alice, **values) -> NumberSettings:
    conf = automation.number_settings_get(session=number)
    base = {f: getattr(conf, f) for f in automation.SETTINGS_FIELDS}
    return automation.number_settings_update(session=number, by=alice, values={**base, **values})


def say(number, text: str = "oi", phone: str = PHONE, **kw) -> Message:
    message = services.message_receive(session=number, msg=inbound(phone=phone, text=text, **kw))
    assert message is not None
    return message


def auto(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(conversation=conversation, automatic=True)
        .order_by("pk")
        .values_list("auto_reason", "body")
    )


def at(when: datetime):
    """Pretend it is ``when`` for the services (timezone.now)."""
    return mock.patch("django.utils.timezone.now", return_value=when)


# A Wednesday: 2026-12-02 is a Wednesday. 12:00 UTC is 09:00 in São Paulo (UTC-3).
WED_NOON_UTC = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


# --- Greeting ------------------------------------------------------------------------


def test_greeting_on_a_new_conversation_and_again_when_reopened(number, alice):
    setup(number, alice, greeting_enabled=True, greeting_message="Olá! Já te atendemos.")
    first = say(number)
    say(number, "tudo bem?")
    assert auto(first.conversation) == [("greeting", "Olá! Já te atendemos.")]
    greeting = Message.objects.get(conversation=first.conversation, automatic=True)
    assert (greeting.status, greeting.sent_by_id, greeting.direction) == (
        "pending",
        None,
        Message.Direction.OUTBOUND,
    )
    services.conversation_set_status(
        conversation=Conversation.objects.get(pk=first.conversation_id), status="closed"
    )
    say(number, "voltei")
    assert [r for r, _b in auto(first.conversation)] == ["greeting", "greeting"]


def test_greeting_on_first_message_ever_only(number, alice):
    setup(number, alice, greeting_enabled=True, greeting_message="Bem-vindo!", greeting_on="first")
    first = say(number)
    services.conversation_set_status(
        conversation=Conversation.objects.get(pk=first.conversation_id), status="closed"
    )
    say(number, "voltei")  # reopened: not a first message ever
    assert auto(first.conversation) == [("greeting", "Bem-vindo!")]


def test_greeting_waits_its_delay_in_the_outbox(number, alice):
    setup(number, alice, greeting_enabled=True, greeting_message="Oi", greeting_delay_seconds=5)
    message = say(number)
    greeting = Message.objects.get(conversation=message.conversation, automatic=True)
    assert greeting.next_attempt_at is not None
    assert services.outbox_pending(session_id=number.pk) == []
    later = timezone.now() + timedelta(seconds=6)
    assert [m.pk for m in services.outbox_pending(session_id=number.pk, now=later)] == [greeting.pk]


# --- Business hours and the away message ---------------------------------------------


def test_away_message_once_per_period_outside_hours(number, alice):
    setup(
        number,
        alice,
        time_zone="America/Sao_Paulo",
        hours_enabled=True,
        business_hours=ALL_WEEK_9_TO_18,
        away_enabled=True,
        away_message="Estamos fora do horário.",
        away_period_hours=4,
    )
    saturday = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    with at(saturday):
        first = say(number, "alguém aí?")
        say(number, "olá?")
    with at(saturday + timedelta(hours=3, minutes=59)):
        say(number, "ainda ninguém?")
    assert auto(first.conversation) == [("away", "Estamos fora do horário.")]
    with at(saturday + timedelta(hours=4, minutes=1)):
        say(number, "e agora?")
    assert [r for r, _b in auto(first.conversation)] == ["away", "away"]


def test_no_away_message_inside_hours(number, alice):
    setup(
        number,
        alice,
        time_zone="America/Sao_Paulo",
        hours_enabled=True,
        business_hours=ALL_WEEK_9_TO_18,
        away_enabled=True,
        away_message="Fora do horário",
    )
    with at(WED_NOON_UTC):  # 09:00 in São Paulo: just open
        message = say(number)
    assert auto(message.conversation) == []
    with at(WED_NOON_UTC - timedelta(minutes=1)):  # 08:59 there: closed
        say(number, "x", phone="5511977770002")
    other = Conversation.objects.get(contact__phone="5511977770002")
    assert [r for r, _b in auto(other)] == ["away"]


def test_the_number_shows_whether_it_is_inside_its_hours(number, alice):
    conf = setup(
        number,
        alice,
        time_zone="Asia/Tokyo",
        hours_enabled=True,
        business_hours=ALL_WEEK_9_TO_18,
    )
    # 2026-12-02 00:30 UTC is Wednesday 09:30 in Tokyo, and Tuesday 21:30 in São Paulo.
    assert autoreply.number_open_now(conf, datetime(2026, 12, 2, 0, 30, tzinfo=UTC)) is True
    conf = setup(number, alice, time_zone="America/Sao_Paulo")
    assert autoreply.number_open_now(conf, datetime(2026, 12, 2, 0, 30, tzinfo=UTC)) is False
    conf = setup(number, alice, hours_enabled=False)
    assert autoreply.number_open_now(conf) is None


# --- Keyword rules -------------------------------------------------------------------


def test_keyword_rules_first_match_wins_in_order(number, alice):
    for match, pattern, answer in [
        ("exact", "preco", "Tabela de preços: ..."),
        ("contains", "preço", "Fale com vendas"),
        ("starts", "horario", "Das 9 às 18"),
    ]:
        automation.keyword_rule_create(
            session=number, values={"match": match, "pattern": pattern, "answer": answer}
        )
    say(number, "PREÇO")  # exact, accents and case ignored
    say(number, "qual o preço do plano?")
    message = say(number, "Horário de sábado?")
    say(number, "obrigado")
    assert [b for _r, b in auto(message.conversation)] == [
        "Tabela de preços: ...",
        "Fale com vendas",
        "Das 9 às 18",
    ]
    first, second, third = automation_rules(number)
    automation.keyword_rule_move(rule=second, up=True)
    autoreply.settings_changed(number.pk)
    say(number, "preco")  # "contains preço" now comes first
    assert auto(message.conversation)[-1] == ("keyword", "Fale com vendas")


def automation_rules(number):
    return list(number.keyword_rules.order_by("position"))


def test_a_regex_rule_and_rules_limited_to_hours(number, alice):
    setup(
        number,
        alice,
        time_zone="UTC",
        hours_enabled=True,
        business_hours={"weekly": {"wed": [["09:00", "18:00"]]}},
    )
    automation.keyword_rule_create(
        session=number,
        values={"match": "regex", "pattern": r"pedido\s*#?\d{4,}", "answer": "Vou verificar"},
    )
    automation.keyword_rule_create(
        session=number,
        values={"match": "contains", "pattern": "ajuda", "answer": "Já já", "when": "inside"},
    )
    automation.keyword_rule_create(
        session=number,
        values={"match": "contains", "pattern": "ajuda", "answer": "Amanhã", "when": "outside"},
    )
    with at(datetime(2026, 12, 2, 10, 0, tzinfo=UTC)):
        message = say(number, "Meu Pedido #12345 atrasou")
        say(number, "ajuda")
    with at(datetime(2026, 12, 2, 20, 0, tzinfo=UTC)):
        say(number, "ajuda")
    assert [b for _r, b in auto(message.conversation)] == ["Vou verificar", "Já já", "Amanhã"]


def test_a_pattern_that_backtracks_without_end_gives_up_and_the_next_rule_answers(
    number, alice, caplog
):
    setup(number, alice, time_zone="UTC")
    # On 4,000 letters and no end, the standard library's re would search for ages.
    automation.keyword_rule_create(
        session=number, values={"match": "regex", "pattern": r"(\w+\s?)+$", "answer": "Never"}
    )
    automation.keyword_rule_create(
        session=number, values={"match": "contains", "pattern": "aaa", "answer": "Next rule"}
    )
    message = say(number, "a" * 4000 + "#")
    assert [b for _r, b in auto(message.conversation)] == ["Next rule"]
    assert "ran out of time" in caplog.text


@pytest.mark.parametrize(
    "values, field",
    [
        ({"match": "regex", "pattern": "(unclosed", "answer": "x"}, "pattern"),
        ({"match": "regex", "pattern": "a" * 201, "answer": "x"}, "pattern"),
        ({"match": "contains", "pattern": "", "answer": "x"}, "pattern"),
        ({"match": "contains", "pattern": "oi", "answer": ""}, "answer"),
        ({"match": "fuzzy", "pattern": "oi", "answer": "x"}, "match"),
    ],
)
def test_bad_rules_are_refused_on_their_field(number, values, field):
    with pytest.raises(ValidationError) as exc:
        automation.keyword_rule_create(session=number, values=values)
    assert field in exc.value.message_dict
    assert not number.keyword_rules.exists()


# --- The rules every automatic message follows ----------------------------------------


def test_loop_cap_per_conversation_a_day(number, alice):
    setup(number, alice, auto_daily_cap=3)
    automation.keyword_rule_create(
        session=number, values={"match": "contains", "pattern": "bot", "answer": "Sou um bot"}
    )
    with at(WED_NOON_UTC):
        for _ in range(6):  # another bot answering ours, forever
            message = say(number, "bot: resposta automática")
    assert len(auto(message.conversation)) == 3
    with at(WED_NOON_UTC + timedelta(days=1)):
        say(number, "bot de novo")
    assert len(auto(message.conversation)) == 4


def test_an_agents_reply_silences_greeting_and_away(number, alice, bob):
    setup(
        number,
        alice,
        time_zone="UTC",
        hours_enabled=True,
        business_hours={"weekly": {}},  # always closed
        away_enabled=True,
        away_message="Fora do horário",
        away_period_hours=1,
        greeting_enabled=True,
        greeting_message="Olá",
        agent_silence_minutes=30,
    )
    t0 = WED_NOON_UTC

    def reasons() -> list[str]:
        return [r for r, _b in auto(first.conversation)]

    with at(t0):
        first = say(number)
    assert reasons() == ["greeting", "away"]
    conversation = Conversation.objects.select_related("contact", "session").get(
        pk=first.conversation_id
    )
    with at(t0 + timedelta(minutes=70)):  # the away period is over: away again
        say(number, "alô?")
    assert reasons() == ["greeting", "away", "away"]
    with at(t0 + timedelta(minutes=130)):
        services.message_queue_outbound(user=bob, conversation=conversation, text="Oi, é o Bob")
    with at(t0 + timedelta(minutes=140)):  # period over, but Bob wrote 10 minutes ago
        say(number, "obrigado")
    assert reasons() == ["greeting", "away", "away"]
    with at(t0 + timedelta(minutes=175)):  # Bob's reply is 45 minutes old
        say(number, "mais uma coisa")
    assert reasons() == ["greeting", "away", "away", "away"]
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    with at(t0 + timedelta(minutes=176)):
        services.message_queue_outbound(user=bob, conversation=conversation, text="Até mais")
    with at(t0 + timedelta(minutes=180)):  # reopened, but Bob just wrote: no greeting
        say(number, "voltei")
    assert reasons().count("greeting") == 1


def test_never_to_groups_to_itself_or_to_contacts_who_opted_out(number, alice):
    setup(number, alice, greeting_enabled=True, greeting_message="Olá")
    group = services.message_receive(
        session=number,
        msg=inbound(
            chat="120363000000000001@g.us",
            sender="5511900000001@s.whatsapp.net",
            is_group=True,
            text="oi grupo",
        ),
    )
    assert group is not None and auto(group.conversation) == []
    number.phone_number = "5511955554444"
    number.save(update_fields=["phone_number"])
    mine = say(number, phone="5511955554444")
    assert auto(mine.conversation) == []
    contact = say(number, phone="5511966660000").conversation.contact
    Message.objects.filter(conversation__contact=contact).delete()
    services.contact_update(contact=contact, no_auto_messages=True)
    Conversation.objects.filter(contact=contact).update(status="closed")
    again = say(number, "voltei", phone="5511966660000")
    assert auto(again.conversation) == []


def test_stored_with_the_message_exactly_once(number, alice):
    """A redelivered message decides nothing again; a failure before commit stores neither."""
    setup(number, alice, greeting_enabled=True, greeting_message="Olá")
    msg = inbound(phone=PHONE, text="oi", message_id="WAMID-1")
    stored = services.message_receive(session=number, msg=msg)
    assert services.message_receive(session=number, msg=msg) is None  # redelivered
    assert services.message_receive_batch(session=number, msgs=[msg, msg]) == []
    assert len(auto(stored.conversation)) == 1

    other = inbound(phone="5511977770009", text="oi", message_id="WAMID-2")
    with mock.patch.object(
        autoreply, "_conversations_advance", side_effect=RuntimeError("worker died")
    ):
        with pytest.raises(RuntimeError):
            services.message_receive(session=number, msg=other)
    assert not Message.objects.filter(wa_id="WAMID-2").exists()
    assert not Message.objects.filter(conversation__contact__phone="5511977770009").exists()
    again = services.message_receive(session=number, msg=other)  # WhatsApp sends it again
    assert [r for r, _b in auto(again.conversation)] == ["greeting"]


def test_batches_decide_per_conversation(number, alice):
    setup(number, alice, greeting_enabled=True, greeting_message="Olá")
    msgs = [inbound(phone=f"55119777700{i:02d}", text="oi") for i in range(3)]
    msgs += [inbound(phone="5511977770000", text="de novo")]
    stored = services.message_receive_batch(session=number, msgs=msgs)
    assert len(stored) == 4
    assert Message.objects.filter(automatic=True, auto_reason="greeting").count() == 3


def test_a_number_with_nothing_turned_on_costs_no_query(number, django_assert_num_queries):
    say(number)  # warms the per-process settings read
    message = say(number, "again")
    autoreply._cache[number.pk] = (None, 1e18)
    with django_assert_num_queries(0):
        assert autoreply.automatic_replies(session=number, messages=[message], reopened=set()) == []


# --- Idle close ------------------------------------------------------------------------


def test_idle_conversations_close_with_message_and_system_line(number, alice):
    setup(number, alice, auto_close_hours=24, auto_close_message="Encerramos por inatividade.")
    idle = say(number).conversation
    busy = say(number, phone="5511977770002").conversation
    Conversation.objects.filter(pk=idle.pk).update(
        last_message_at=timezone.now() - timedelta(hours=25)
    )
    Conversation.objects.filter(pk=busy.pk).update(
        last_message_at=timezone.now() - timedelta(hours=23)
    )
    assert services.conversations_auto_close(session_ids=[number.pk]) == 1
    idle = Conversation.objects.get(pk=idle.pk)
    assert idle.status == "closed"
    assert auto(idle) == [("close", "Encerramos por inatividade.")]
    event = ConversationEvent.objects.get(conversation=idle)
    assert (event.kind, event.actor) == ("closed", None)
    assert Conversation.objects.get(pk=busy.pk).status != "closed"
    assert services.conversations_auto_close(session_ids=[number.pk]) == 0  # once


def test_idle_close_is_off_by_default(number):
    conv = say(number).conversation
    Conversation.objects.filter(pk=conv.pk).update(
        last_message_at=timezone.now() - timedelta(days=30)
    )
    assert services.conversations_auto_close(session_ids=[number.pk]) == 0


# --- Bad settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, field",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"business_hours": {"weekly": {"mon": [["18:00", "09:00"]]}}}, "hours_mon"),
        (
            {"business_hours": {"weekly": {"tue": [["08:00", "12:00"], ["11:00", "14:00"]]}}},
            "hours_tue",
        ),
        ({"business_hours": {"exceptions": [{"date": "2026-13-01", "hours": []}]}}, "exceptions"),
        ({"auto_daily_cap": 0}, "auto_daily_cap"),
        ({"greeting_enabled": True, "greeting_message": " "}, "greeting_message"),
        ({"away_enabled": True, "away_message": "x", "hours_enabled": False}, "hours_enabled"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_saved(number, alice, values, field):
    before = NumberSettings.objects.get(session=number)
    with pytest.raises(ValidationError) as exc:
        setup(number, alice, **{"greeting_message": "kept?", **values})
    assert field in exc.value.message_dict
    after = NumberSettings.objects.get(session=number)
    assert after.greeting_message == before.greeting_message
    assert after.updated_at == before.updated_at


def test_automatic_messages_fill_their_variables_in_the_numbers_time_zone(number, alice):
    setup(
        number,
        alice,
        time_zone="Asia/Tokyo",
        greeting_enabled=True,
        greeting_message="{{saudacao}}, {{nome}}! Protocolo {{protocolo}}.",
    )
    with at(datetime(2026, 12, 2, 0, 30, tzinfo=UTC)):  # 09:30 in Tokyo, 21:30 in São Paulo
        message = say(number, push_name="Rita")
    assert auto(message.conversation) == [
        ("greeting", f"Bom dia, Rita! Protocolo {message.conversation_id}.")
    ]


def test_unknown_variables_are_refused_when_saved(number, alice):
    with pytest.raises(ValidationError) as exc:
        setup(number, alice, away_message="Olá {{cliente}}", auto_close_message="{{nome}")
    assert set(exc.value.message_dict) == {"away_message", "auto_close_message"}
    with pytest.raises(ValidationError) as exc:
        automation.keyword_rule_create(
            session=number, values={"pattern": "oi", "answer": "Oi {{empresa}}"}
        )
    assert "{{empresa}}" in exc.value.message_dict["answer"][0]
    assert NumberSettings.objects.get(session=number).away_message == ""
