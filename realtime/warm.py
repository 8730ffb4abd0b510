"""The web process's warm-up, before it serves: the first live event after the sockets
connect costs what the others do.

Cold, the first ``new_message`` a process renders compiled its templates, loaded the
translation catalogues of each language and imported what rendering and sending need
on the way, which delayed that event for every socket by a few hundred milliseconds.
``warm_up`` renders a made-up message (never saved, never sent) in every UI language
along the path a real one takes (realtime.fragments.frames_for, realtime.wire), then
moves what start-up made out of the garbage collector's way (``gc.freeze``), so the
collector no longer walks the process's import-time objects during events.
"""

from __future__ import annotations

import gc
import logging
import time

from django.utils import timezone

from conversations.models import Contact, Conversation, Message
from realtime.events import new_message_rows
from realtime.fragments import frames_for, languages
from realtime.messages import Push
from realtime.wire import framed
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)


def sample_message() -> Message:
    """An inbound text message in a conversation on a number, none of them saved."""
    now = timezone.now()
    session = WhatsAppSession(id=1, name="Warm-up")
    contact = Contact(
        id=1,
        session=session,
        jid="5500000000000@s.whatsapp.net",
        phone="5500000000000",
        push_name="Warm-up",
        created_at=now,
        updated_at=now,
    )
    conversation = Conversation(
        id=1,
        session=session,
        contact=contact,
        last_message_at=now,
        created_at=now,
        updated_at=now,
    )
    return Message(
        id=1,
        conversation=conversation,
        wa_id="warm-up",
        direction=Message.Direction.INBOUND,
        body="Warm-up",
        sender_name="Warm-up",
        status=Message.Status.RECEIVED,
        wa_timestamp=now,
        created_at=now,
        updated_at=now,
    )


def warm_up() -> float:
    """Render and frame a sample event in every language; the seconds it took. A failure
    is logged, never raised: a process that could not warm up still serves."""
    started = time.monotonic()
    try:
        push: Push = {
            "type": "push",
            "event": "new_message",
            "rows": new_message_rows(sample_message()),
        }
        frames = frames_for(push, languages(), {})
        for frame in frames.values():
            framed(frame)
    except Exception:
        logger.exception("warm-up: could not render a sample event")
    gc.collect()
    gc.freeze()
    return time.monotonic() - started
