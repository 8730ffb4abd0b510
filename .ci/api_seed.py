"""Data for the CI's schemathesis run: the API user's number with conversations and messages,
so the fuzzed requests (ids 1, 2, ... come first in the schema's examples) reach real rows.
Run with: manage.py shell < .ci/api_seed.py (after api_token_create ci --create-user)."""

from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from conversations.services import message_receive
from whatsapp.gateway.base import InboundMessage, MessageKind
from whatsapp.services import session_create, session_on_qr

user = get_user_model().objects.get(username="ci")
session = session_create(owner=user, name="CI number")
session_on_qr(session_id=session.pk, code="2@ci-schemathesis,qr")
for i in range(3):
    jid = f"55119000000{i}@s.whatsapp.net"
    for j in range(3):
        message_receive(
            session=session,
            msg=InboundMessage(
                message_id=f"CI{i}{j}",
                chat=jid,
                sender=jid,
                timestamp=datetime.now(UTC),
                kind=MessageKind.TEXT,
                text=f"hello {i}.{j}",
                push_name=f"Contact {i}",
            ),
        )
print("seeded number", session.pk)
