"""Automatic replies in a real browser: the owner sets business hours that exclude now
and an away message; a customer writes twice; exactly one away message reaches them and
the thread shows it as automatic."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from conversations.services import autoreply
from tests.ui.conftest import LiveServer, _wait

CUSTOMER = "5511970009101"
AWAY = "Estamos fora do horário. Voltamos amanhã às 9h."
CLEANUP = """
from whatsapp.models import NumberSettings
NumberSettings.objects.update(hours_enabled=False, away_enabled=False, business_hours={})
"""


def hours_excluding_now() -> str:
    """An interval of today (in São Paulo) that has already ended or not yet begun."""
    now = datetime.now(ZoneInfo("America/Sao_Paulo"))
    return "00:00-00:01" if now.hour >= 1 else "23:00-23:59"


def test_one_away_message_outside_business_hours(live: LiveServer, login):
    try:
        owner = login("alice", f"/conversations/automatic/{live.session_id}/")
        owner.set_viewport_size({"width": 360, "height": 740})  # on a phone
        form = owner.locator("form.automatic-form")
        form.locator("input[name=hours_enabled]").check()
        form.locator("input[name=time_zone]").fill("America/Sao_Paulo")
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            form.locator(f"input[name=hours_{day}]").fill(hours_excluding_now())
        form.locator("input[name=away_enabled]").check()
        form.locator("textarea[name=away_message]").fill(AWAY)
        form.locator("button[type=submit]").click()
        expect(owner.locator(".toast.success")).to_be_visible()
        expect(owner.locator("#hours-state")).to_have_class("hours-state closed")
        width = owner.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360

        agent = login("bob")
        expect(agent.locator(".hours-chip.closed")).to_be_visible()
        live.say(CUSTOMER, push_name="Cliente Noturno", text="Boa noite, alguém aí?")
        live.say(CUSTOMER, push_name="Cliente Noturno", text="Preciso de ajuda")
        _wait(lambda: [s for s in live.sent() if s["text"] == AWAY], 20, "the away message")
        row = agent.locator(".conversation-row", has_text="Cliente Noturno")
        row.locator(".row-link").click()
        expect(agent.locator("#messages .msg.in")).to_have_count(2)
        automatic = agent.locator("#messages .msg.automatic")
        expect(automatic).to_have_count(1)
        expect(automatic).to_contain_text(AWAY)
        expect(automatic.locator(".auto-tag")).to_be_visible()
        # Still exactly one, a while later (the worker has flushed its outbox since).
        agent.wait_for_timeout(2500)
        assert len([s for s in live.sent() if s["text"] == AWAY]) == 1
        for page in (owner, agent):
            assert page.errors == [] and page.dialogs == []
    finally:
        live.manage("shell", "--verbosity", "0", "-c", CLEANUP)
        # The server reads a number's settings at most every few seconds: the tests
        # after this one must not meet the away message.
        time.sleep(autoreply._TTL + 1)
