"""An agent writes first: a conversation with a phone that has not written to the number.

The phone is checked on WhatsApp before anything is stored. The check runs on the
worker that holds the number (its WhatsApp client makes it), asked over the channel
layer (``realtime.layer.worker_lookup``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from conversations.models import Conversation, Message
from conversations.services.agent import conversation_open
from conversations.services.outbox import ContactCard, Location, message_send
from realtime.layer import WorkerUnavailable, worker_lookup
from vbcrm.errors import field_error
from vbcrm.types import User
from whatsapp.models import WhatsAppSession
from whatsapp.phones import phone_from_input
from whatsapp.selectors import user_can_see_session

logger = logging.getLogger(__name__)


def _not_connected() -> ValidationError:
    return ValidationError(
        _("The number is not connected; reconnect it in Numbers."), code="not_connected"
    )


def phone_on_whatsapp(*, session: WhatsAppSession, phone: str) -> str:
    """The JID WhatsApp knows ``phone`` (digits) by, asked through the number's worker.

    Refuses (ValidationError) with ``not_connected`` when the number is not connected
    or no worker answers in ``VBCRM_PHONE_LOOKUP_SECONDS``, ``lookup_failed`` when
    WhatsApp did not answer, ``not_on_whatsapp`` when the phone has no account."""
    if session.status != WhatsAppSession.Status.CONNECTED:
        raise _not_connected()
    try:
        answer = worker_lookup(session.pk, [phone], settings.VBCRM_PHONE_LOOKUP_SECONDS)
    except WorkerUnavailable:
        logger.info("phone lookup unanswered session=%s", session.pk)
        raise _not_connected() from None
    error = answer.get("error")
    if error == "not_connected":
        raise _not_connected()
    results = answer.get("results") or []
    if error or len(results) != 1:
        raise ValidationError(
            _("WhatsApp did not answer the lookup; try again."), code="lookup_failed"
        )
    result = results[0]
    if not result.get("on_whatsapp") or not result.get("jid"):
        raise field_error("phone", _("This number is not on WhatsApp."), "not_on_whatsapp")
    return str(result["jid"])


def conversation_start(
    *,
    user: User,
    session: WhatsAppSession,
    phone: str,
    text: str = "",
    upload: UploadedFile | None = None,
    kind: str | None = None,
    client_key: str = "",
    location: Location | None = None,
    contact: ContactCard | None = None,
) -> tuple[Conversation, Message]:
    """Write first to ``phone`` from ``session``: the conversation (the one that exists
    with that contact on that number, or a new one) and its queued first message.

    In this order, each refusal a ValidationError that stores nothing: the number
    (``not_found`` unless the user works it), the phone (``invalid_phone``: see
    ``whatsapp.phones.phone_from_input`` for the formats), an empty message, the lookup
    (``phone_on_whatsapp``), then ``message_send``'s rules (rate, storable text...).
    """
    if not user_can_see_session(user, session.pk):
        raise field_error("session_id", _("No such number."), "not_found")
    digits = phone_from_input(phone)
    if upload is None and location is None and contact is None and not (text or "").strip():
        raise field_error("text", _("Type a message or attach a file."), "empty")
    jid = phone_on_whatsapp(session=session, phone=digits)
    # Found or made together with the message: a refused message leaves no empty
    # conversation behind.
    with transaction.atomic():
        conversation = conversation_open(session=session, phone=digits, jid=jid)
        message = message_send(
            user=user,
            conversation=conversation,
            text=text,
            upload=upload,
            kind=kind,
            client_key=client_key,
            location=location,
            contact=contact,
        )
    logger.info("conversation started id=%s session=%s", conversation.pk, session.pk)
    return conversation, message
