"""The one send service behind the page, the API and the socket: its checks and their order."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from conversations import services
from conversations.models import Message
from tests.factories import inbound
from vbcrm.errors import error_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def elsewhere(number):
    return services.message_receive(session=number, msg=inbound(phone="5511900000009", text="x"))


def _refusal(**kwargs) -> tuple[str | None, str]:
    """The first (field, code) ``message_send`` refuses with."""
    with pytest.raises(ValidationError) as info:
        services.message_send(**kwargs)
    field, code, _message = error_items(info.value)[0]
    return field, code


def _outbound() -> int:
    return Message.objects.filter(direction=Message.Direction.OUTBOUND).count()


def test_it_checks_the_rate_then_the_quote_then_the_text_then_writes(
    conversation, elsewhere, bob, charlie, settings
):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 1
    sent = services.message_send(user=bob, conversation=conversation, text="one")
    assert sent.status == Message.Status.PENDING and _outbound() == 1
    # Past the rate, nothing else is looked at.
    everything_wrong = {"text": "a\x00" + "x" * 5000, "reply_to_id": elsewhere.pk}
    with pytest.raises(ValidationError) as info:
        services.message_send(user=bob, conversation=conversation, **everything_wrong)
    assert info.value.code == "rate_limited"
    assert 1 <= info.value.params["retry_after"] <= 60
    settings.VBCRM_SEND_RATE_PER_MINUTE = 0  # no limit
    # Then the quote: a message of another conversation, or one the user cannot see.
    assert _refusal(user=bob, conversation=conversation, **everything_wrong) == (
        "reply_to_id",
        "invalid",
    )
    assert _refusal(
        user=bob, conversation=conversation, text="re", reply_to_id=elsewhere.pk + 1000
    ) == ("reply_to_id", "not_found")
    # Then text the database cannot store, before the write's own rules (too long).
    assert _refusal(user=bob, conversation=conversation, text="a\x00" + "x" * 5000) == (
        "text",
        "invalid",
    )
    assert _refusal(user=bob, conversation=conversation, text="a\ud800") == ("text", "invalid")
    assert _refusal(user=bob, conversation=conversation, text="a", client_key="k\x00") == (
        "client_key",
        "invalid",
    )
    # Then the write, with its own rules.
    assert _refusal(user=bob, conversation=conversation, text="x" * 5000) == ("text", "too_long")
    assert _outbound() == 1
    own = conversation.messages.filter(direction=Message.Direction.INBOUND).get()
    reply = services.message_send(
        user=bob, conversation=conversation, text="re", reply_to_id=own.pk
    )
    assert reply.reply_to == own and reply.quoted_wa_id == own.wa_id


def test_a_quote_the_user_cannot_see_does_not_exist(conversation, charlie):
    own = conversation.messages.get()
    # charlie may not see the number at all; the conversation is alice's and bob's.
    assert _refusal(user=charlie, conversation=conversation, text="re", reply_to_id=own.pk) == (
        "reply_to_id",
        "not_found",
    )
    assert _outbound() == 0
