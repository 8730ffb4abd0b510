"""Plain JSON shape of a number, as its pages receive it in socket events."""

from __future__ import annotations

from typing import Any

from whatsapp.models import WhatsAppSession
from whatsapp.qr import qr_svg


def session_data(session: WhatsAppSession, *, secrets: bool = False) -> dict[str, Any]:
    """A number's state for its pages. The QR and pairing codes are its owner's alone:
    they are in only with ``secrets`` (empty otherwise)."""
    return {
        "id": session.pk,
        "name": session.name,
        "status": session.status,
        "status_label": str(session.get_status_display()),
        "status_detail": session.status_detail,
        "phone_number": session.phone_number,
        "qr_svg": qr_svg(session.qr_code) if secrets and session.qr_code else "",
        "pair_code": session.pair_code if secrets else "",
        "connected_at": session.connected_at.isoformat() if session.connected_at else None,
        "status_since": session.status_since.isoformat() if session.status_since else None,
        # The owner's frames say so: a number of theirs logged out is theirs to link again.
        "mine": secrets,
        "last_event_at": session.last_event_at.isoformat() if session.last_event_at else None,
        "lease_holder": session.lease_holder,
    }
