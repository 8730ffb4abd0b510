"""The worker end to end, a number's life: linking, resuming, logging out, restarts, leases.

Simulator network -> child process -> worker -> database, and back."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations.models import Message
from tests.whatsapp.conftest import link, link_attempt, running_worker, status_of, wait_for
from whatsapp import services
from whatsapp.models import WhatsAppSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


async def test_it_links_a_number_by_qr_code(simulator, linked):
    async with running_worker():
        await link(simulator, linked, "5511900000001")
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=linked.pk)
    assert row.phone_number == "5511900000001"
    assert row.jid.startswith("5511900000001")
    assert row.connected_at is not None
    # a graceful stop releases the lease and stops showing it as connected
    assert row.lease_holder == "" and row.status == "disconnected"


async def test_a_linked_number_resumes_without_a_new_qr(simulator, linked):
    async with running_worker():
        await link(simulator, linked, "5511900000001")
    async with running_worker():
        await wait_for(lambda: status_of(linked.pk) == "connected", what="resumed")
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=linked.pk)
    assert row.qr_code == ""


async def test_a_dropped_connection_comes_back_and_keeps_receiving(simulator, linked):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(c.post, "/api/drop", {"all": True})
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="after drop"
        )
        await wait_for(lambda: Message.objects.filter(body="after drop").exists())
        await wait_for(lambda: status_of(linked.pk) == "connected")


async def test_logout_from_the_phone_is_recorded(simulator, linked):
    async with running_worker() as worker:
        await link(simulator, linked, "5511900000001")
        await asyncio.to_thread(simulator.control.post, "/api/logout", {"phone": "5511900000001"})
        await wait_for(lambda: status_of(linked.pk) == "logged_out")
        await wait_for(lambda: not worker.runners, what="runner dropped")
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=linked.pk)
    assert row.jid == "" and row.lease_holder == ""


async def test_a_user_logout_unlinks_the_device(simulator, linked):
    async with running_worker():
        await link(simulator, linked, "5511900000001")
        await sync_to_async(services.session_request_logout)(session=linked)
        await wait_for(lambda: status_of(linked.pk) == "logged_out")
    numbers = simulator.control.get("/api/numbers")
    assert all(n["phone"] != "5511900000001" for n in numbers)


async def test_a_phone_linked_twice_is_refused_and_unlinked(simulator, sim_settings, alice, bob):
    # The phone is already linked to alice's number (run by some other worker).
    first = await sync_to_async(services.session_create)(owner=alice, name="A")
    await sync_to_async(services.session_on_paired)(
        session_id=first.pk, jid="5511900000001:7@s.whatsapp.net", phone="5511900000001"
    )
    await sync_to_async(services.session_on_state)(session_id=first.pk, state="connected")
    await sync_to_async(WhatsAppSession.objects.filter(pk=first.pk).update)(
        lease_holder="elsewhere", lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    second = await sync_to_async(services.session_create)(owner=bob, name="B")
    async with running_worker():
        await link_attempt(simulator, second, "5511900000001")
        await wait_for(lambda: status_of(second.pk) == "logged_out")
        # the refused device is unlinked from the phone again
        await wait_for(
            lambda: all(
                n["account"] != str(second.pk) for n in simulator.control.get("/api/numbers")
            )
        )
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=second.pk)
    assert "already linked" in row.status_detail
    assert row.phone_number == "" and row.jid == ""
    assert await sync_to_async(status_of)(first.pk) == "connected"


async def test_a_phone_linked_to_two_numbers_keeps_the_first_and_refuses_the_second(
    simulator, sim_settings, alice, bob
):
    """Both numbers run here, both linked through the network: WhatsApp keeps the
    phone's first device, so it is the app that refuses the second."""
    phone = "5511900000001"
    first = await sync_to_async(services.session_create)(owner=alice, name="A")
    second = await sync_to_async(services.session_create)(owner=bob, name="B")
    async with running_worker():
        await link(simulator, first, phone)
        await link_attempt(simulator, second, phone)
        await wait_for(lambda: status_of(second.pk) == "logged_out", what="second refused")
        await wait_for(
            lambda: (
                [n["account"] for n in simulator.control.get("/api/numbers")] == [str(first.pk)]
            ),
            what="only the first number's device left on the phone",
        )
        assert await sync_to_async(status_of)(first.pk) == "connected"
        # and the first number still receives
        await asyncio.to_thread(
            simulator.control.send_message, to=phone, **{"from": "5511988880001"}, text="ainda"
        )
        await wait_for(
            lambda: Message.objects.filter(conversation__session=first, body="ainda").exists(),
            what="the message on the first number",
        )
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=second.pk)
    assert "already linked" in row.status_detail and row.phone_number == ""
    assert await sync_to_async(status_of)(first.pk) != "logged_out"


async def test_pairing_code_links_a_number(simulator, sim_settings, alice):
    session = await sync_to_async(services.session_create)(owner=alice, name="P")
    await sync_to_async(services.session_request_link)(
        session=session, pair_phone="+55 11 90000-0009"
    )
    async with running_worker():
        code = await wait_for(
            lambda: WhatsAppSession.objects.get(pk=session.pk).pair_code, what="pair code"
        )
        await asyncio.to_thread(simulator.control.post, "/api/pair-codes/confirm", {"code": code})
        await wait_for(lambda: status_of(session.pk) == "connected")
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=session.pk)
    assert row.phone_number == "5511900000009"


async def test_a_killed_child_restarts_and_the_other_number_keeps_receiving(
    simulator, sim_settings, alice
):
    one = await sync_to_async(services.session_create)(owner=alice, name="One")
    two = await sync_to_async(services.session_create)(owner=alice, name="Two")
    c = simulator.control
    async with running_worker() as worker:
        await link(simulator, one, "5511900000001")
        await link(simulator, two, "5511900000002")
        victim = worker.runners[one.pk].child
        os.kill(victim.pid, signal.SIGKILL)
        for i in range(20):
            await asyncio.to_thread(
                c.send_message, to="5511900000002", **{"from": "5511988880002"}, text=f"t{i}"
            )
        await wait_for(lambda: Message.objects.filter(conversation__session=two).count() == 20)
        await wait_for(
            lambda: WhatsAppSession.objects.get(pk=one.pk).child_restarts == 1,
            what="restart counted",
        )
        await wait_for(
            lambda: (
                worker.runners[one.pk].child is not None
                and worker.runners[one.pk].child.pid != victim.pid
            )
        )
        await wait_for(lambda: status_of(one.pk) == "connected", what="reconnected")
        await asyncio.to_thread(
            c.send_message, to="5511900000001", **{"from": "5511988880001"}, text="back"
        )
        await wait_for(
            lambda: Message.objects.filter(conversation__session=one, body="back").exists()
        )
    assert await sync_to_async(status_of)(two.pk) == "disconnected"  # released on shutdown


async def test_a_silent_child_is_restarted_by_the_watchdog(simulator, linked):
    async with running_worker(silence_seconds=1.0) as worker:
        await link(simulator, linked, "5511900000001")
        runner = worker.runners[linked.pk]
        pid = runner.child.pid
        os.kill(pid, signal.SIGSTOP)  # alive but frozen: no events, no heartbeats
        try:
            await wait_for(
                lambda: runner.child is not None and runner.child.pid != pid,
                timeout=30,
                what="restart",
            )
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await wait_for(lambda: status_of(linked.pk) == "connected", what="reconnected")


async def test_the_worker_reports_its_metrics(simulator, linked):
    from vbcrm import metrics

    restarts = metrics.CHILD_RESTARTS._value.get()
    async with running_worker() as worker:
        await link(simulator, linked, "5511900000001")
        await wait_for(lambda: metrics.CONNECTED_NUMBERS._value.get() == 1, what="gauge")
        os.kill(worker.runners[linked.pk].child.pid, signal.SIGKILL)
        await wait_for(lambda: metrics.CHILD_RESTARTS._value.get() == restarts + 1, what="counter")
    assert metrics.CONNECTED_NUMBERS._value.get() == 0


async def test_a_worker_that_loses_its_lease_stops_the_number(simulator, linked):
    import uuid

    async with running_worker(lease_seconds=3) as worker:
        await link(simulator, linked, "5511900000001")
        child = worker.runners[linked.pk].child
        # Another worker took the number over (its own fencing token).
        await sync_to_async(WhatsAppSession.objects.filter(pk=linked.pk).update)(
            lease_holder="other",
            lease_token=uuid.uuid4(),
            lease_expires_at=timezone.now() + timedelta(minutes=5),
        )
        await wait_for(lambda: linked.pk not in worker.runners, what="runner stopped")
        await wait_for(lambda: not child.is_alive(), what="child gone")
    row = await sync_to_async(WhatsAppSession.objects.get)(pk=linked.pk)
    assert row.lease_holder == "other"  # the loser never touches the winner's lease


async def test_a_lapsed_lease_claimed_back_keeps_the_one_running_client(simulator, linked):
    earlier = set(multiprocessing.active_children())  # left by other tests, if any
    async with running_worker(lease_seconds=60) as worker:  # renewals 20 s apart
        await link(simulator, linked, "5511900000001")
        runner = worker.runners[linked.pk]
        pid = runner.child.pid
        # The worker's own lease ran out before its renewal (a machine too busy to tick).
        await sync_to_async(WhatsAppSession.objects.filter(pk=linked.pk).update)(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        await wait_for(
            lambda: WhatsAppSession.objects.get(pk=linked.pk).lease_expires_at > timezone.now(),
            what="lease claimed back",
        )
        row = await sync_to_async(WhatsAppSession.objects.get)(pk=linked.pk)
        assert worker.runners[linked.pk] is runner and runner.child.pid == pid
        assert runner.token == row.lease_token  # renewals go on under the new token
        await asyncio.sleep(1)  # a second child, if one were started, would be up by now
        spawned = [
            p
            for p in multiprocessing.active_children()
            if p not in earlier and p.name == f"whatsapp-{linked.pk}"
        ]
        assert [p.pid for p in spawned] == [pid]


async def test_a_number_deleted_as_it_is_claimed_is_skipped_quietly(
    simulator, sim_settings, alice, caplog
):
    """Created and deleted at once: the worker claims it, the row is gone when the
    worker reads it. Normal, not an error; the other numbers of the claim still run."""
    import logging
    from unittest import mock

    gone = await sync_to_async(services.session_create)(owner=alice, name="Gone")
    kept = await sync_to_async(services.session_create)(owner=alice, name="Kept")
    claim = services.session_lease_claim

    def claim_then_delete(**kwargs):
        claimed = claim(**kwargs)
        if gone.pk in [pk for pk, _token in claimed]:
            services.session_delete(session=WhatsAppSession.objects.get(pk=gone.pk))
        return claimed

    caplog.set_level(logging.INFO)
    with mock.patch.object(services, "session_lease_claim", claim_then_delete):
        async with running_worker(lease_seconds=30) as worker:
            await wait_for(
                lambda: WhatsAppSession.objects.get(pk=kept.pk).qr_code,
                timeout=10,
                what="the other number's QR code",
            )
            assert gone.pk not in worker.runners and kept.pk in worker.runners
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"session={gone.pk} deleted" in r.getMessage() for r in caplog.records)
