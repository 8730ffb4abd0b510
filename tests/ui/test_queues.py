"""Queues in a real browser: an owner sets them up from the page, a customer picks one
from the menu bot, and the conversation lands, live, with an available agent."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.ui.conftest import LiveServer, _wait

CUSTOMER = "5511970009001"
CLEANUP = """
from conversations.models import AgentPresence, Queue, QueueSettings
Queue.objects.all().delete()
QueueSettings.objects.all().delete()
AgentPresence.objects.update(available=False)
"""


def add_queue(page, session_id: int, name: str, position: int, *, round_robin: bool) -> None:
    form = page.locator(f".queue-number[data-session='{session_id}'] form.queue-add")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=position]").fill(str(position))
    if round_robin:
        form.locator("select[name=assignment]").select_option("round_robin")
    form.locator(".queue-agents label", has_text="Bob").locator("input").check()
    form.locator("button[type=submit]").click()
    expect(page.locator(f".queue-item input[name=name][value='{name}']")).to_have_count(1)


def test_a_customer_picks_a_queue_from_the_menu_and_an_available_agent_gets_it(
    live: LiveServer, login
):
    try:
        owner = login("alice", "/conversations/queues/")
        add_queue(owner, live.session_id, "Vendas", 1, round_robin=False)
        add_queue(owner, live.session_id, "Suporte", 2, round_robin=True)
        settings = owner.locator(f".queue-number[data-session='{live.session_id}'] .queue-settings")
        settings.locator("textarea[name=menu_greeting]").fill("Olá! Como podemos ajudar?")
        settings.locator("button[type=submit]").click()
        expect(owner.locator(".toast.success")).to_be_visible()

        agent = login("bob")
        switch = agent.locator("#availability button")
        expect(switch).to_have_class("link presence is-away")
        switch.click()
        expect(agent.locator("#availability button")).to_have_class("link presence is-available")

        live.say(CUSTOMER, push_name="Cliente Fila", text="Oi, preciso de ajuda")
        menu = "Olá! Como podemos ajudar?\n1 — Vendas\n2 — Suporte"
        _wait(
            lambda: [s for s in live.sent() if s["text"] == menu],
            20,
            "the menu to reach the customer",
        )
        row = agent.locator(".conversation-row", has_text="Cliente Fila")
        expect(row).to_be_visible()
        expect(row).to_have_attribute("data-assigned", "")
        expect(row.locator(".queue-tag")).to_have_count(0)

        live.say(CUSTOMER, push_name="Cliente Fila", text="2")
        expect(row.locator(".queue-tag")).to_have_text("Suporte")
        bob_id = agent.locator("#inbox").get_attribute("data-me")
        expect(row).to_have_attribute("data-assigned", str(bob_id))

        # The thread shows the bot's menu as automatic, and the queue and assignment lines.
        row.locator(".row-link").click()
        expect(agent.locator("#messages .msg.automatic")).to_have_count(1)
        expect(agent.locator("#messages .sysline")).to_have_count(2)

        # The inbox's queue filter lists it under Suporte.
        agent.locator("#queue-filter").select_option(label="Suporte")
        expect(agent.locator(".conversation-row", has_text="Cliente Fila")).to_be_visible()
        for page in (owner, agent):
            assert page.errors == [] and page.dialogs == []
    finally:
        live.manage("shell", "--verbosity", "0", "-c", CLEANUP)
