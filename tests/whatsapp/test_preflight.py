"""A worker refuses to start where running the linked numbers would log them out, and
numbers nobody is linking run no client."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from whatsapp import preflight, services
from whatsapp.config import store_for
from whatsapp.models import WhatsAppSession

pytestmark = pytest.mark.django_db

Status = WhatsAppSession.Status
JID = "5511900000001:1@s.whatsapp.net"


@pytest.fixture
def store_dir(settings, tmp_path):
    settings.WHATSAPP_STORE_DIR = tmp_path / "store"
    settings.WHATSAPP_STORE_DSN = ""
    settings.WHATSAPP_IGNORE_STORE_CHECK = False
    return settings.WHATSAPP_STORE_DIR


def _linked(owner, name: str, *, gateway: str, jid: str = JID) -> WhatsAppSession:
    session = services.session_create(owner=owner, name=name)
    services.session_on_paired(
        session_id=session.pk, jid=jid, phone=jid.split(":")[0], gateway=gateway
    )
    services.session_on_state(session_id=session.pk, state="connected")
    return WhatsAppSession.objects.get(pk=session.pk)


def _keys_stored(session: WhatsAppSession) -> None:
    with sqlite3.connect(store_for(session.pk)) as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO whatsmeow_device VALUES (?)", (session.jid,))


def test_a_link_records_the_gateway_it_was_made_with(alice, store_dir):
    session = _linked(alice, "Vendas", gateway="simulator")
    assert session.gateway == "simulator"
    assert session.link_requested_at is None  # linked: the request is spent


def test_a_changed_gateway_is_refused_naming_the_setting(alice, store_dir):
    _linked(alice, "Vendas", gateway="simulator")
    _linked(alice, "Suporte", gateway="simulator", jid="5511900000002:1@s.whatsapp.net")
    message = preflight.refusal(gateway="neonize", ignore=False)
    assert message is not None
    assert "WHATSAPP_GATEWAY=simulator" in message and "'neonize'" in message
    assert "'Vendas', 'Suporte'" in message and "--ignore-store-check" in message
    # the same gateway is fine, and being told to go on starts it anyway
    assert preflight.refusal(gateway="simulator", ignore=False) is None
    assert preflight.refusal(gateway="neonize", ignore=True) is None


def test_the_setting_also_tells_it_to_go_on(alice, store_dir, settings):
    _linked(alice, "Vendas", gateway="simulator")
    settings.WHATSAPP_IGNORE_STORE_CHECK = True
    assert preflight.refusal(gateway="neonize", ignore=False) is None


def test_a_store_without_the_numbers_keys_is_refused_naming_the_setting(alice, store_dir):
    kept = _linked(alice, "Kept", gateway="neonize", jid="5511900000003:4@s.whatsapp.net")
    _keys_stored(kept)
    assert preflight.refusal(gateway="neonize", ignore=False) is None
    _linked(alice, "Lost", gateway="neonize")  # its store file does not exist
    message = preflight.refusal(gateway="neonize", ignore=False)
    assert message is not None
    assert "WHATSAPP_STORE_DIR" in message and str(store_dir) in message
    assert "'Lost'" in message and "'Kept'" not in message


def test_logged_out_and_unlinked_numbers_are_no_reason_to_refuse(alice, store_dir):
    gone = _linked(alice, "Gone", gateway="simulator")
    services.session_on_state(session_id=gone.pk, state="logged_out")
    services.session_create(owner=alice, name="Never linked")
    assert preflight.refusal(gateway="neonize", ignore=False) is None


def test_serve_with_the_worker_refuses_to_start(alice, store_dir, settings):
    settings.WHATSAPP_GATEWAY = "neonize"
    _linked(alice, "Vendas", gateway="simulator")
    with pytest.raises(CommandError, match="Refusing to start the WhatsApp worker"):
        call_command("serve", "--worker", "--port", "1")


# --- numbers nobody is linking --------------------------------------------------------


def _claimable() -> set[int]:
    claimed = services.session_lease_claim(holder="w", lease_seconds=30, limit=10)
    for session_id, token in claimed:
        services.session_lease_release(session_id=session_id, token=token)
    return {session_id for session_id, _token in claimed}


def test_a_number_runs_a_client_only_while_someone_wants_it_linked(alice, settings):
    settings.WHATSAPP_LINK_WINDOW_SECONDS = 600
    session = services.session_create(owner=alice, name="Vendas")
    assert _claimable() == {session.pk}  # just made: its QR code is wanted now

    WhatsAppSession.objects.filter(pk=session.pk).update(
        link_requested_at=timezone.now() - timedelta(seconds=601)
    )
    assert _claimable() == set()  # nobody asked for a while: no client, no QR rotation

    services.session_request_link(session=session)  # the Link button, whatsapp_connect
    assert _claimable() == {session.pk}


def test_numbers_from_before_the_link_request_wait_for_one(alice):
    session = services.session_create(owner=alice, name="Vendas")
    WhatsAppSession.objects.filter(pk=session.pk).update(link_requested_at=None)
    assert _claimable() == set()


def test_a_held_number_nobody_linked_in_time_goes_back_to_waiting(alice, settings):
    session = services.session_create(owner=alice, name="Vendas")
    [(session_id, token)] = services.session_lease_claim(holder="w", lease_seconds=30, limit=1)
    assert session_id == session.pk
    services.session_on_qr(session_id=session_id, code="2@abc")
    lost, kept = services.session_lease_renew(held={session_id: token}, lease_seconds=30)
    assert (lost, set(kept)) == (set(), {session_id})

    settings.WHATSAPP_LINK_WINDOW_SECONDS = 0
    lost, kept = services.session_lease_renew(held={session_id: token}, lease_seconds=30)
    assert (lost, kept) == ({session_id}, {})
    row = WhatsAppSession.objects.get(pk=session_id)
    assert (row.status, row.qr_code) == (Status.NEW, "")
    assert "Link" in row.status_detail


def test_a_linked_number_runs_whatever_the_link_window(alice, settings, store_dir):
    settings.WHATSAPP_LINK_WINDOW_SECONDS = 0
    session = _linked(alice, "Vendas", gateway="simulator")
    assert _claimable() == {session.pk}


def test_the_check_never_loads_neonize_into_the_parent_process():
    """neonize's Go core must only ever be loaded in a spawned child (docs/NEONIZE.md)."""
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'vbcrm.settings'\n"
        "import django; django.setup()\n"
        "import whatsapp.preflight, whatsapp.worker, vbcrm.asgi\n"
        "print('neonize' in sys.modules)\n"
    )
    env = {**os.environ, "DATABASE_URL": "sqlite:///:memory:"}
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
