"""Every write to a number goes through here (views, API, commands, admin, worker)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from realtime import events
from vbcrm.errors import field_error
from vbcrm.types import User
from whatsapp.models import NumberSettings, SessionAgent, WhatsAppSession
from whatsapp.phones import normalise_phone

logger = logging.getLogger(__name__)

Status = WhatsAppSession.Status


def _normalise_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise field_error("name", _("Give the number a name."), "required")
    if len(name) > 100:
        raise field_error("name", _("The name is too long (100 characters at most)."))
    return name


@transaction.atomic
def session_create(*, owner: User, name: str) -> WhatsAppSession:
    """Create a number for ``owner``, within their limit and with a unique name.

    Race-safe: the owner's row is locked first, so two concurrent creates for
    one owner run one after the other and the second sees the first's row.
    (SQLite serialises writers anyway; transactions start IMMEDIATE.)
    """
    name = _normalise_name(name)
    User = get_user_model()
    User.objects.select_for_update().only("pk").get(pk=owner.pk)
    limit = settings.VBCRM_MAX_NUMBERS_PER_OWNER
    if WhatsAppSession.objects.filter(owner=owner).count() >= limit:
        raise ValidationError(
            _("You already have %(limit)d numbers, the most allowed. Delete one first.")
            % {"limit": limit},
            code="limit_reached",
        )
    if WhatsAppSession.objects.filter(owner=owner, name=name).exists():
        raise field_error("name", _("You already have a number with this name."), "duplicate_name")
    # Made to be linked now: the page shows its QR code at once.
    session = WhatsAppSession.objects.create(
        owner=owner, name=name, link_requested_at=timezone.now()
    )
    NumberSettings.objects.create(session=session)
    logger.info("session created id=%s owner=%s", session.pk, owner.pk)
    events.session_changed(session)
    events.access_changed([owner.pk])
    # A new number needs a client at once to show its QR code: don't wait for a poll.
    events.worker_wakeup(session.pk)
    return session


@transaction.atomic
def session_delete(*, session: WhatsAppSession) -> None:
    """Delete a number and everything it holds. The worker running it lets it go
    when its lease renewal finds the row gone."""
    session_id, owner_id = session.pk, session.owner_id
    agent_ids = list(SessionAgent.objects.filter(session=session).values_list("user_id", flat=True))
    session.delete()
    logger.info("session deleted id=%s", session_id)
    events.session_deleted(session_id, [owner_id, *agent_ids])
    events.access_changed([owner_id, *agent_ids])


@transaction.atomic
def session_update_options(
    *, session: WhatsAppSession, ignore_groups: bool | None = None, history_days: int | None = None
) -> WhatsAppSession:
    fields = []
    if ignore_groups is not None:
        session.ignore_groups = ignore_groups
        fields.append("ignore_groups")
    if history_days is not None:
        if not 0 <= history_days <= 365:
            raise field_error("history_days", _("Between 0 and 365 days."))
        session.history_days = history_days
        fields.append("history_days")
    if fields:
        session.save(update_fields=[*fields, "updated_at"])
    return session


def session_agent_add(*, session: WhatsAppSession, user: User) -> None:
    if user.pk == session.owner_id:
        raise ValidationError(_("The owner already works this number."), code="owner")
    if not user.is_active:
        raise ValidationError(_("This user is inactive."), code="inactive")
    try:
        with transaction.atomic():
            SessionAgent.objects.create(session=session, user=user)
            # Their open pages start receiving this number's events at once.
            events.access_changed([user.pk])
    except IntegrityError:
        return  # already an agent: adding twice is not an error
    logger.info("agent added session=%s user=%s", session.pk, user.pk)


def session_agent_remove(*, session: WhatsAppSession, user: User) -> None:
    with transaction.atomic():
        removed, _rows = SessionAgent.objects.filter(session=session, user=user).delete()
        if removed:
            events.access_changed([user.pk])
    logger.info("agent removed session=%s user=%s", session.pk, user.pk)


# --- Link lifecycle (called by the worker, one per gateway event) ---------------------


def _save_state(session: WhatsAppSession, fields: list[str]) -> None:
    session.last_event_at = timezone.now()
    moved = False
    if "status" in fields:
        session.status_since = session.last_event_at
        fields = [*fields, "status_since"]
        # A new QR code saves "waiting for QR" again: only a real move is announced.
        moved = (
            WhatsAppSession.objects.filter(pk=session.pk).exclude(status=session.status).exists()
        )
    session.save(update_fields=[*fields, "last_event_at", "updated_at"])
    events.session_changed(session)
    if moved:
        events.session_status_changed(session)


@transaction.atomic
def session_on_qr(*, session_id: int, code: str) -> WhatsAppSession | None:
    session = WhatsAppSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        return None
    session.status = Status.WAITING_QR
    session.qr_code = code
    session.qr_updated_at = timezone.now()
    session.status_detail = ""
    _save_state(session, ["status", "qr_code", "qr_updated_at", "status_detail"])
    return session


@transaction.atomic
def session_on_pair_code(*, session_id: int, phone: str, code: str) -> WhatsAppSession | None:
    session = WhatsAppSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        return None
    session.status = Status.PAIRING
    session.pair_phone = phone
    session.pair_code = code
    _save_state(session, ["status", "pair_phone", "pair_code"])
    return session


def session_on_paired(
    *, session_id: int, jid: str, phone: str, push_name: str = "", gateway: str = ""
) -> WhatsAppSession | None:
    """The phone scanned the QR. Refuses a phone already linked to another number.

    ``gateway`` is the worker's WHATSAPP_GATEWAY, where the device keys now live.

    Then the number is recorded as logged out (committed) and
    ``ValidationError(code="duplicate_number")`` is raised; the worker logs the
    new link out so the phone is never linked twice.
    """
    phone = normalise_phone(phone)
    with transaction.atomic():
        session = WhatsAppSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            return None
        taken = (
            WhatsAppSession.objects.filter(phone_number=phone)
            .exclude(pk=session.pk)
            .exclude(status=Status.LOGGED_OUT)
            .exists()
        )
        if taken:
            session.status = Status.LOGGED_OUT
            session.status_detail = _("This phone number is already linked to another number.")
            session.qr_code = ""
            session.pair_code = ""  # spent: the phone used it
            session.jid = ""
            _save_state(session, ["status", "status_detail", "qr_code", "pair_code", "jid"])
        else:
            session.jid = jid
            session.phone_number = phone
            session.push_name = push_name[:128]
            session.gateway = gateway or settings.WHATSAPP_GATEWAY
            session.qr_code = ""
            session.pair_code = ""
            session.status_detail = ""
            session.link_requested_at = None
            _save_state(
                session,
                [
                    *("jid", "phone_number", "push_name", "gateway", "qr_code", "pair_code"),
                    *("status_detail", "link_requested_at"),
                ],
            )
    if taken:
        logger.info("session refused duplicate phone id=%s", session.pk)
        raise ValidationError(session.status_detail, code="duplicate_number")
    logger.info("session paired id=%s", session.pk)
    return session


_STATE_TO_STATUS = {
    "starting": None,
    "waiting_qr": Status.WAITING_QR,
    "pairing": Status.PAIRING,
    "connected": Status.CONNECTED,
    "disconnected": Status.DISCONNECTED,
    "pairing_expired": Status.DISCONNECTED,
    "logged_out": Status.LOGGED_OUT,
    "stopped": None,
}


@transaction.atomic
def session_on_state(*, session_id: int, state: str, detail: str = "") -> WhatsAppSession | None:
    """Record a connection state reported by the gateway."""
    session = WhatsAppSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        return None
    status = _STATE_TO_STATUS.get(state)
    if session.status == Status.LOGGED_OUT:
        # Only a new link request revives a logged-out number; late events of the old
        # link must not (and the first reason, e.g. "already linked", is kept).
        return session
    linking = not session.jid and session.status in (
        Status.NEW,
        Status.WAITING_QR,
        Status.PAIRING,
    )
    if state == "disconnected" and linking:
        # Not reachable yet while linking: keep waiting for the QR code (the client
        # retries); only an expired QR code ends the attempt.
        status = None
    fields = ["status_detail"]
    session.status_detail = detail[:255]
    if status is not None and status != session.status:
        session.status = status
        fields.append("status")
        if status == Status.CONNECTED:
            session.qr_code = ""
            session.pair_code = ""
            session.pair_phone = ""
            fields += ["qr_code", "pair_code", "pair_phone"]
            if session.connected_at is None:
                session.connected_at = timezone.now()
                fields.append("connected_at")
        if status == Status.LOGGED_OUT:
            # The device keys are gone: linking again starts from a new QR code.
            session.jid = ""
            session.qr_code = ""
            session.connected_at = None
            session.logout_requested = False
            fields += ["jid", "qr_code", "connected_at", "logout_requested"]
        logger.info("session state id=%s status=%s", session.pk, status)
    if state == "pairing_expired":
        session.qr_code = ""
        session.status_detail = _("The QR code expired before it was scanned.")
        fields.append("qr_code")
    _save_state(session, fields)
    return session


@transaction.atomic
def session_request_link(*, session: WhatsAppSession, pair_phone: str = "") -> WhatsAppSession:
    """Ask the worker to (re)link a number by QR code, or by pairing code for ``pair_phone``."""
    session = WhatsAppSession.objects.select_for_update().get(pk=session.pk)
    if session.status == Status.CONNECTED:
        raise ValidationError(_("This number is already connected."), code="connected")
    session.pair_phone = normalise_phone(pair_phone) if pair_phone else ""
    # The phone is known again once it is linked; until then it blocks nobody else.
    session.phone_number = ""
    session.pair_code = ""
    session.qr_code = ""
    session.status = Status.NEW
    session.status_detail = ""
    session.link_requested_at = timezone.now()
    _save_state(
        session,
        [
            *("pair_phone", "phone_number", "pair_code", "qr_code", "status", "status_detail"),
            "link_requested_at",
        ],
    )
    events.worker_wakeup(session.pk)
    return session


@transaction.atomic
def session_request_logout(*, session: WhatsAppSession) -> WhatsAppSession:
    """Unlink the number from WhatsApp.

    When a worker holds the number, it logs the device out (the phone's list of
    linked devices drops it) and records the result. With no live worker, the
    number is marked logged out here; its device keys are discarded when it is
    linked again.
    """
    session = WhatsAppSession.objects.select_for_update().get(pk=session.pk)
    now = timezone.now()
    held = bool(
        session.lease_holder and session.lease_expires_at and session.lease_expires_at > now
    )
    if held and session.status != Status.LOGGED_OUT:
        session.logout_requested = True
        _save_state(session, ["logout_requested"])
        events.worker_wakeup(session.pk)
    else:
        session.logout_requested = False
        session.status = Status.LOGGED_OUT
        session.jid = ""
        session.qr_code = ""
        session.pair_code = ""
        session.connected_at = None
        _save_state(
            session,
            ["logout_requested", "status", "jid", "qr_code", "pair_code", "connected_at"],
        )
    logger.info("session logout requested id=%s held=%s", session.pk, held)
    return session


# --- Worker leases ---------------------------------------------------------------------
#
# A worker runs a number only while it holds the number's lease: holder, a fresh
# token per claim (the fencing token: sends check it), and an expiry renewed by
# heartbeat. A dead worker's leases expire and a live worker claims them.


LINKING = (Status.NEW, Status.WAITING_QR, Status.PAIRING)


def _link_wanted_q() -> Q:
    """Unlinked numbers someone asked to link a short while ago (see
    ``WHATSAPP_LINK_WINDOW_SECONDS``): the others wait, with no client and no QR code."""
    since = timezone.now() - timedelta(seconds=settings.WHATSAPP_LINK_WINDOW_SECONDS)
    return Q(status__in=LINKING, link_requested_at__gte=since)


def runnable_sessions_q() -> Q:
    """Numbers that need a WhatsApp client: linked ones, and ones being linked now."""
    return ~Q(status=Status.LOGGED_OUT) & (~Q(jid="") | _link_wanted_q())


def session_lease_claim(
    *, holder: str, lease_seconds: int, limit: int, only: int | None = None
) -> list[tuple[int, uuid.UUID]]:
    """Claim up to ``limit`` runnable numbers whose lease is free or expired.

    ``SELECT ... FOR UPDATE SKIP LOCKED`` lets workers claim side by side without
    waiting on each other; the conditional UPDATE makes each claim exact.
    """
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    claimed: list[tuple[int, uuid.UUID]] = []
    if limit <= 0:
        return claimed
    with transaction.atomic():
        candidates = WhatsAppSession.objects.filter(runnable_sessions_q() & free)
        if only is not None:
            candidates = candidates.filter(pk=only)
        ids = list(
            candidates.select_for_update(skip_locked=True)
            .order_by("lease_expires_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        for session_id in ids:
            token = uuid.uuid4()
            updated = WhatsAppSession.objects.filter(Q(pk=session_id) & free).update(
                lease_holder=holder,
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
            if updated:
                claimed.append((session_id, token))
    for session in WhatsAppSession.objects.filter(pk__in=[pk for pk, _token in claimed]):
        logger.info("lease claimed session=%s holder=%s", session.pk, holder)
        events.session_changed(session)  # pages show which worker runs it
    return claimed


def session_lease_renew(
    *, held: dict[int, uuid.UUID], lease_seconds: int
) -> tuple[set[int], dict[int, WhatsAppSession]]:
    """Extend the leases still ours. Returns (lost ids, current rows of the kept ones).

    A lease is lost when the row is gone, another worker took it, or the number
    no longer needs a client (logged out, pairing abandoned, nobody linked it in time).
    """
    if not held:
        return set(), {}
    now = timezone.now()
    until = now + timedelta(seconds=lease_seconds)
    kept: dict[int, WhatsAppSession] = {}
    with transaction.atomic():
        lapsed = (
            WhatsAppSession.objects.select_for_update()
            .filter(pk__in=list(held), jid="", status__in=LINKING)
            .exclude(_link_wanted_q())
        )
        for session in lapsed:
            if session.lease_token == held[session.pk]:
                # Its QR codes would go on rotating for nobody: back to waiting for a request.
                session.status = Status.NEW
                session.qr_code = session.pair_code = ""
                session.status_detail = _("Nobody linked it in time. Press Link to try again.")
                _save_state(session, ["status", "qr_code", "pair_code", "status_detail"])
        for session_id, token in held.items():
            WhatsAppSession.objects.filter(
                Q(pk=session_id, lease_token=token) & runnable_sessions_q()
            ).update(lease_expires_at=until)
        rows = WhatsAppSession.objects.filter(pk__in=list(held), lease_expires_at=until)
        for row in rows:
            if row.lease_token == held[row.pk]:
                kept[row.pk] = row
    lost = set(held) - set(kept)
    for session_id in lost:
        logger.info("lease lost session=%s", session_id)
    return lost, kept


def session_lease_release(*, session_id: int, token: uuid.UUID) -> None:
    """Free the lease only: the number needs no client any more, or another worker holds it.
    Its status stays as it is; compare `session_worker_stopped`."""
    WhatsAppSession.objects.filter(pk=session_id, lease_token=token).update(
        lease_holder="", lease_token=None, lease_expires_at=None
    )


def session_child_restarted(*, session_id: int) -> None:
    WhatsAppSession.objects.filter(pk=session_id).update(child_restarts=F("child_restarts") + 1)


def session_touch(*, session_id: int, when: datetime) -> None:
    """Record the time of the number's latest WhatsApp activity (for health checks)."""
    WhatsAppSession.objects.filter(pk=session_id).update(last_event_at=when)


def session_worker_stopped(*, session_id: int, token: uuid.UUID) -> None:
    """The worker running the number shut down: free the lease, and stop showing the number
    as connected until a worker runs it again (`session_lease_release` frees the lease only)."""
    with transaction.atomic():
        session = (
            WhatsAppSession.objects.select_for_update()
            .filter(pk=session_id, lease_token=token)
            .first()
        )
        if session is None:
            return
        session.lease_holder, session.lease_token, session.lease_expires_at = "", None, None
        fields = ["lease_holder", "lease_token", "lease_expires_at"]
        if session.status in (Status.CONNECTED, Status.WAITING_QR, Status.PAIRING):
            session.status = Status.DISCONNECTED if session.jid else Status.NEW
            session.qr_code = ""
            session.status_detail = _("No worker is running this number.")
            fields += ["status", "qr_code", "status_detail"]
        _save_state(session, fields)


def number_auto_rate(*, session_id: int) -> int:
    """How many automatic messages the number may send a minute (at least one)."""
    rate = (
        NumberSettings.objects.filter(session_id=session_id)
        .values_list("auto_rate_per_minute", flat=True)
        .first()
    )
    return max(rate or NumberSettings._meta.get_field("auto_rate_per_minute").default, 1)
