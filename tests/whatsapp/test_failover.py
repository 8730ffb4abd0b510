"""Two standalone workers on PostgreSQL + Redis; one is killed with SIGKILL mid-traffic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from conversations import services as conv_services
from conversations.models import Conversation, Message
from conversations.services import automation
from whatsapp import services
from whatsapp.models import WhatsAppSession

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker_env(postgres_only, simulator, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL=redis://... (CI does)")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "WHATSAPP_GATEWAY": "simulator",
        "WHATSAPP_SIMULATOR_URL": simulator.url,
        "WHATSAPP_LEASE_SECONDS": "6",
        "WHATSAPP_STORE_DIR": str(tmp_path / "store"),
        "VBCRM_MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_READ_DOT_ENV_FILE": "0",
    }
    procs: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "whatsapp_worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _holders(*ids: int) -> set[str]:
    return set(WhatsAppSession.objects.filter(pk__in=ids).values_list("lease_holder", flat=True))


def test_a_killed_worker_hands_its_numbers_over_with_nothing_lost(worker_env, simulator, alice):
    c = simulator.control
    one = services.session_create(owner=alice, name="One")
    two = services.session_create(owner=alice, name="Two")
    a = worker_env("a")
    for session, phone in ((one, "5511900000001"), (two, "5511900000002")):
        _wait(lambda s=session: WhatsAppSession.objects.get(pk=s.pk).qr_code, 30, "QR")
        c.post("/api/qr/scan", {"account": str(session.pk), "phone": phone})
        _wait(
            lambda s=session: WhatsAppSession.objects.get(pk=s.pk).status == "connected", 30, "link"
        )
    (holder_a,) = _holders(one.pk, two.pk)
    b = worker_env("b")
    time.sleep(2)  # b is up and polling; it holds nothing while a's leases are live
    assert _holders(one.pk, two.pk) == {holder_a}

    for phone in ("5511900000001", "5511900000002"):
        c.send_message(to=phone, **{"from": "5511988880001"}, text="first")
    _wait(lambda: Conversation.objects.count() == 2, 30, "conversations")
    conv_one = Conversation.objects.select_related("session", "contact").get(session=one)
    inbound: list[str] = []
    replies: list[str] = []
    killed_at = None
    for i in range(60):
        phone = "5511900000001" if i % 2 else "5511900000002"
        inbound.append(c.send_message(to=phone, **{"from": "5511988880001"}, text=f"in {i}"))
        if i % 3 == 0:
            replies.append(
                conv_services.message_queue_outbound(
                    user=alice, conversation=conv_one, text=f"reply {i}"
                ).wa_id
            )
        if i == 20:
            os.killpg(a.pid, signal.SIGKILL)  # the worker and its children, no goodbye
            killed_at = time.monotonic()
        time.sleep(0.05)

    _wait(
        lambda: (h := _holders(one.pk, two.pk)) and holder_a not in h and "" not in h,
        45,
        "numbers moved to worker b",
    )
    took = time.monotonic() - killed_at
    print(f"numbers moved to the live worker {took:.1f}s after the kill (lease 6s)")
    assert took <= 45
    _wait(
        lambda: Message.objects.filter(wa_id__in=inbound).count() == len(inbound),
        60,
        "every message",
    )
    sent = _wait(
        lambda: (s := c.sent("5511900000001")) and len(s) >= len(replies) and s, 60, "every reply"
    )
    assert b.poll() is None
    # nothing lost, nothing twice
    assert Message.objects.filter(wa_id__in=inbound).count() == len(inbound)
    assert Message.objects.filter(direction="CLIENTE").count() == len(inbound) + 2
    sent_ids = [s["message_id"] for s in sent]
    assert sorted(sent_ids) == sorted(set(sent_ids)), "a reply went out twice"
    assert set(replies) <= set(sent_ids)
    _wait(
        lambda: not Message.objects.filter(wa_id__in=replies).exclude(status="sent").exists(),
        30,
        "every reply marked sent",
    )
    sent_ids = [s["message_id"] for s in c.sent("5511900000001")]
    assert sorted(sent_ids) == sorted(set(sent_ids)), "a reply went out twice"


def test_automatic_replies_survive_a_killed_worker_exactly_once(worker_env, simulator, alice):
    """Each customer message gets its keyword answer once: decided with the message, so
    neither a SIGKILL after the commit (the outbox keeps it) nor a redelivery (the message
    is a replay) sends it twice or skips it."""
    c = simulator.control
    number = services.session_create(owner=alice, name="Bot")
    conf = automation.number_settings_get(session=number)
    base = {f: getattr(conf, f) for f in automation.SETTINGS_FIELDS}
    automation.number_settings_update(
        session=number,
        by=alice,
        values={**base, "auto_daily_cap": 100, "auto_rate_per_minute": 600},
    )
    automation.keyword_rule_create(
        session=number, values={"match": "contains", "pattern": "pedido", "answer": "Recebido"}
    )
    a = worker_env("a")
    _wait(lambda: WhatsAppSession.objects.get(pk=number.pk).qr_code, 30, "QR")
    c.post("/api/qr/scan", {"account": str(number.pk), "phone": "5511900000003"})
    _wait(lambda: WhatsAppSession.objects.get(pk=number.pk).status == "connected", 30, "link")
    (holder_a,) = _holders(number.pk)
    b = worker_env("b")
    customers = [f"55119888800{i:02d}" for i in range(4)]
    inbound: list[str] = []
    for i in range(40):
        customer = customers[i % len(customers)]
        inbound.append(c.send_message(to="5511900000003", **{"from": customer}, text=f"pedido {i}"))
        if i == 15:
            os.killpg(a.pid, signal.SIGKILL)
        time.sleep(0.05)
    _wait(
        lambda: (h := _holders(number.pk)) and holder_a not in h and "" not in h,
        45,
        "the number moved to worker b",
    )
    _wait(
        lambda: Message.objects.filter(wa_id__in=inbound).count() == len(inbound),
        60,
        "every message",
    )
    answers = Message.objects.filter(conversation__session=number, automatic=True)
    assert answers.count() == len(inbound)  # one decided per message, none twice
    sent = _wait(
        lambda: (s := c.sent("5511900000003")) and len(s) >= len(inbound) and s,
        60,
        "every answer sent",
    )
    assert b.poll() is None
    sent_ids = [s["message_id"] for s in sent]
    assert sorted(sent_ids) == sorted(set(sent_ids)), "an answer went out twice"
    assert set(answers.values_list("wa_id", flat=True)) <= set(sent_ids)
    assert all(s["text"] == "Recebido" for s in sent)
