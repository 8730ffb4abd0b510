"""Checks before a worker starts: would running the linked numbers log them out?

A linked number's device keys live where the gateway it was linked with keeps them. A
worker started with another ``WHATSAPP_GATEWAY``, or pointed at a store that lacks the
keys (``WHATSAPP_STORE_DIR`` / ``WHATSAPP_STORE_DSN`` moved or emptied), would find no keys
and every such number would end up logged out, to be linked again by hand from each
phone. The worker refuses to start instead, naming the setting, unless told to go on
(``WHATSAPP_IGNORE_STORE_CHECK`` or ``--ignore-store-check``).
"""

from __future__ import annotations

import logging

from django.conf import settings

from whatsapp.config import store_for
from whatsapp.gateway.neonize.store import StoreUnavailable, device_in_store
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)

_NAMES_SHOWN = 5


def _names(sessions: list[WhatsAppSession]) -> str:
    names = ", ".join(repr(s.name) for s in sessions[:_NAMES_SHOWN])
    more = len(sessions) - _NAMES_SHOWN
    return f"{names} and {more} more" if more > 0 else names


def _keys_missing(sessions: list[WhatsAppSession]) -> list[WhatsAppSession]:
    missing = []
    for session in sessions:
        try:
            if not device_in_store(store_for(session.pk), session.jid):
                missing.append(session)
        except StoreUnavailable as exc:
            # Not a verdict: the gateway retries an unreachable store by itself.
            logger.warning("device store unreachable session=%s: %s", session.pk, exc)
    return missing


IGNORE_HELP = (
    "Start even if linked numbers' device keys are not where this worker looks (another "
    "WHATSAPP_GATEWAY, a moved store): those numbers are logged out and must be linked again."
)


def add_ignore_argument(parser) -> None:
    """The ``--ignore-store-check`` option of the commands that start a worker."""
    parser.add_argument(
        "--ignore-store-check", action="store_true", default=False, help=IGNORE_HELP
    )


def refusal(*, gateway: str, ignore: bool) -> str | None:
    """The message a command that starts a worker exits with, or ``None`` to start."""
    problem = store_problem(gateway=gateway)
    if problem is None:
        return None
    if ignore or settings.WHATSAPP_IGNORE_STORE_CHECK:
        logger.warning("starting anyway (store check ignored): %s", problem)
        return None
    return f"Refusing to start the WhatsApp worker. {problem}"


def store_problem(*, gateway: str) -> str | None:
    """Why starting a worker with ``gateway`` would log linked numbers out, or ``None``."""
    linked = list(
        WhatsAppSession.objects.exclude(jid="")
        .exclude(status=WhatsAppSession.Status.LOGGED_OUT)
        .order_by("pk")
    )
    elsewhere = [s for s in linked if s.gateway and s.gateway != gateway]
    if elsewhere:
        before = sorted({s.gateway for s in elsewhere})
        return (
            f"{len(elsewhere)} linked number(s) ({_names(elsewhere)}) were linked with "
            f"WHATSAPP_GATEWAY={' / '.join(before)}, but it is now {gateway!r}: their device "
            f"keys are not there, and starting would log them out. Set WHATSAPP_GATEWAY="
            f"{before[0]} again, or start with --ignore-store-check "
            "(WHATSAPP_IGNORE_STORE_CHECK=1) to link them again from their phones."
        )
    if gateway != "neonize":
        return None
    missing = _keys_missing([s for s in linked if s.gateway in ("", gateway)])
    if not missing:
        return None
    if settings.WHATSAPP_STORE_DSN:
        where = "WHATSAPP_STORE_DSN (the PostgreSQL device store)"
    else:
        where = f"WHATSAPP_STORE_DIR ({settings.WHATSAPP_STORE_DIR})"
    return (
        f"The device store in {where} has no keys for {len(missing)} linked number(s) "
        f"({_names(missing)}): starting would log them out. Point the setting at the store "
        "they were linked with, or start with --ignore-store-check "
        "(WHATSAPP_IGNORE_STORE_CHECK=1) to link them again from their phones."
    )
