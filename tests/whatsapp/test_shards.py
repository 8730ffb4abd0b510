"""Several numbers per child process (WHATSAPP_NUMBERS_PER_PROCESS): numbers share a shard,
a crash takes down only its shard, and its numbers come back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message
from tests.test_settings import CLEAN, ROOT, settings_with
from tests.whatsapp.conftest import link, running_worker, status_of, wait_for
from whatsapp import services
from whatsapp.config import WorkerConfig
from whatsapp.gateway.base import ConnState, Event, QRCode, SessionConfig, StateChanged
from whatsapp.gateway.process import GATEWAYS
from whatsapp.gateway.shards import ShardPool
from whatsapp.models import WhatsAppSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def _restarts(session_id: int) -> int:
    return WhatsAppSession.objects.get(pk=session_id).child_restarts


async def _receives(simulator, session: WhatsAppSession, phone: str, text: str) -> None:
    await asyncio.to_thread(
        simulator.control.send_message, to=phone, **{"from": "5511988880000"}, text=text
    )
    await wait_for(
        lambda: Message.objects.filter(conversation__session=session, body=text).exists(),
        what=f"{text!r} stored",
    )


async def test_numbers_share_a_process_and_a_crash_restarts_only_its_shard(
    simulator, sim_settings, alice
):
    one, two, three = [
        await sync_to_async(services.session_create)(owner=alice, name=name)
        for name in ("One", "Two", "Three")
    ]
    async with running_worker(numbers_per_process=2) as worker:
        for session, phone in ((one, "5511900000001"), (two, "5511900000002")):
            await link(simulator, session, phone)
        await link(simulator, three, "5511900000003")
        pids = {pk: worker.runners[pk].child.pid for pk in (one.pk, two.pk, three.pk)}
        assert len(set(pids.values())) == 2  # two shards for three numbers, two per shard
        shared = [pk for pk in pids if list(pids.values()).count(pids[pk]) == 2]
        alone = next(pk for pk in pids if pk not in shared)
        phones = {one.pk: "5511900000001", two.pk: "5511900000002", three.pk: "5511900000003"}
        rows = {one.pk: one, two.pk: two, three.pk: three}

        os.kill(pids[shared[0]], signal.SIGKILL)

        # the other shard's number goes on receiving, in the same process, never restarted
        await _receives(simulator, rows[alone], phones[alone], "still here")
        assert worker.runners[alone].child.pid == pids[alone]
        for pk in shared:
            await wait_for(lambda pk=pk: _restarts(pk) == 1, what=f"restart of {pk} counted")
            await wait_for(lambda pk=pk: status_of(pk) == "connected", what=f"{pk} back")
            await _receives(simulator, rows[pk], phones[pk], f"back {pk}")
            assert worker.runners[pk].child.pid != pids[pk]
        assert await sync_to_async(_restarts)(alone) == 0
        # back in shards with room: never more processes than two numbers each need
        now = {worker.runners[pk].child.pid for pk in pids}
        assert len(now) == 2 and pids[shared[0]] not in now


async def test_a_number_stopped_in_a_shard_leaves_its_neighbour_running(
    simulator, sim_settings, alice
):
    one = await sync_to_async(services.session_create)(owner=alice, name="One")
    two = await sync_to_async(services.session_create)(owner=alice, name="Two")
    async with running_worker(numbers_per_process=4) as worker:
        await link(simulator, one, "5511900000001")
        await link(simulator, two, "5511900000002")
        pid = worker.runners[one.pk].child.pid
        assert worker.runners[two.pk].child.pid == pid

        worker.drop(one.pk)
        # A session in a shard is given its full stop time (CLOSE_SECONDS + 5) before its
        # shard would be killed.
        await wait_for(lambda: one.pk not in worker.runners, timeout=40, what="number one dropped")
        await _receives(simulator, two, "5511900000002", "neighbour")
        assert worker.runners[two.pk].child.pid == pid
        assert await sync_to_async(_restarts)(two.pk) == 0
    # the worker stopped both; the shard process is gone with its last number
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            await asyncio.sleep(0.1)


async def test_one_number_per_process_is_the_default(simulator, sim_settings, alice):
    one = await sync_to_async(services.session_create)(owner=alice, name="One")
    two = await sync_to_async(services.session_create)(owner=alice, name="Two")
    assert WorkerConfig.from_settings().numbers_per_process == 1
    async with running_worker() as worker:
        await link(simulator, one, "5511900000001")
        await link(simulator, two, "5511900000002")
        assert worker.shards is None
        assert worker.runners[one.pk].child.pid != worker.runners[two.pk].child.pid


def test_numbers_per_process_comes_from_the_environment(tmp_path):
    keys = ["WHATSAPP_NUMBERS_PER_PROCESS"]
    out = settings_with(tmp_path, keys, WHATSAPP_NUMBERS_PER_PROCESS="10")
    assert out == {"WHATSAPP_NUMBERS_PER_PROCESS": "10"}


def test_numbers_per_process_below_one_is_refused(tmp_path):
    env = {**CLEAN, "DJANGO_SETTINGS_MODULE": "vbcrm.settings", "DJANGO_READ_DOT_ENV_FILE": "0"}
    env.update(VBCRM_DATA_DIR=str(tmp_path / "data"), WHATSAPP_NUMBERS_PER_PROCESS="0")
    code = "import django; django.setup()"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "WHATSAPP_NUMBERS_PER_PROCESS must be 1 or more" in out.stderr


# --- real neonize clients sharing a shard (offline: they fail to connect and retry) ----


def _neonize_config(tmp_path, account: str) -> SessionConfig:
    return SessionConfig(
        account=account,
        store=str(tmp_path / f"number-{account}.sqlite3"),
        device_jid="",
        media_dir=str(tmp_path),
        options={"retry_initial": 0.2, "retry_max": 1.0},
    )


async def _running(events: list[Event], timeout: float = 60) -> None:
    """Wait until the client got past starting: a failed connect, or a QR code if online."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if any(
            isinstance(e, QRCode)
            or (isinstance(e, StateChanged) and e.state == ConnState.DISCONNECTED)
            for e in events
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the client never ran: {events!r}")


async def test_real_clients_share_a_shard_and_come_back_after_it_is_killed(tmp_path):
    pool = ShardPool(GATEWAYS["neonize"], per_process=2)
    events: dict[str, list[Event]] = {"1": [], "2": [], "3": []}
    members = {a: pool.member(_neonize_config(tmp_path, a), events[a].append) for a in events}
    for member in members.values():
        await member.start()
    try:
        for account in events:
            await _running(events[account])
        assert members["1"].pid == members["2"].pid != members["3"].pid
        killed, other = members["1"].pid, members["3"].pid
        assert killed is not None

        os.kill(killed, signal.SIGKILL)
        await asyncio.wait_for(members["1"].wait_exited(), 30)
        await asyncio.wait_for(members["2"].wait_exited(), 30)
        assert members["3"].is_alive() and members["3"].pid == other

        for account in ("1", "2"):  # what each number's runner does: start it again
            events[account].clear()
            members[account] = pool.member(
                _neonize_config(tmp_path, account), events[account].append
            )
            await members[account].start()
        for account in ("1", "2"):
            await _running(events[account])
        assert killed not in {m.pid for m in members.values()}
        assert members["3"].pid == other  # never restarted
    finally:
        await asyncio.gather(*(m.stop(timeout=20) for m in members.values()))
    assert pool.shards == [] or all(s.closing or s.gone for s in pool.shards)
