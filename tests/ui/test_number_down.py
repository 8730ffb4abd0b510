"""A number logged out from the phone, in a real browser: its owner is told, the thread
says replies will wait, and a reply queued meanwhile goes out once when it is linked again."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.ui.conftest import PHONE, _wait
from tests.ui.test_inbox import open_conversation


def test_a_reply_waits_for_a_logged_out_number_and_goes_out_once_it_is_back(live, login):
    contact = "5511972000031"  # its own: the browser tests share one server and its data
    live.say(contact, push_name="Olga Espera", text="Vocês estão aí?")
    owner = login("alice")
    open_conversation(owner, "Olga Espera")
    bar = owner.locator("#number-down")
    expect(bar).to_be_hidden()  # connected: nothing to say
    numbers = login("alice", "/numbers/")  # the owner, on another page: told there too
    # ... once its socket listens: a page that opens after the logout gets no banner (only
    # a logout heard live is news; its card says it)
    numbers.wait_for_function("() => VB.socket.open")

    live.control.post("/api/logout", {"phone": PHONE})
    # the thread's bar says how the number is, since when, and that replies will wait
    expect(bar).to_be_visible()
    expect(bar.locator(".state")).to_contain_text("Desvinculado desde")
    expect(bar.locator("a")).to_have_attribute("href", "/numbers/")
    # the owner's pages get a banner (and a notification, where allowed)
    for page in (owner, numbers):
        banner = page.locator("#banners .banner")
        expect(banner).to_have_count(1)
        expect(banner).to_contain_text("Support")
        expect(banner.locator("a")).to_have_attribute("href", "/numbers/")
    # an agent of the number sees the bar but gets no banner: linking it is the owner's
    agent = login("bob")
    open_conversation(agent, "Olga Espera")
    expect(agent.locator("#number-down")).to_be_visible()
    expect(agent.locator("#banners .banner")).to_have_count(0)

    owner.fill("#composer-text", "Estamos sim, já respondo")
    owner.press("#composer-text", "Enter")
    reply = owner.locator("#messages .msg.out").last
    expect(reply).to_have_attribute("data-status", "pending")
    time.sleep(1.5)
    assert not [m for m in live.sent() if m["text"] == "Estamos sim, já respondo"]

    # linked again from the Numbers page: the reply goes out, once, and the bar goes away
    card = numbers.locator(f"#number-{live.session_id}")
    expect(card).to_have_attribute("data-status", "logged_out")
    card.locator("button[data-link]").click()
    expect(numbers.locator("#link-panel img.qr")).to_be_visible()
    live.scan(live.session_id, PHONE)
    _wait(live.linked, 30, "the number to connect again")
    expect(numbers.locator("#link-panel .link-state.success")).to_be_visible()
    expect(reply).to_have_attribute("data-status", "sent", timeout=30_000)
    expect(bar).to_be_hidden()
    time.sleep(1)
    sent = [m for m in live.sent() if m["text"] == "Estamos sim, já respondo"]
    assert len(sent) == 1 and sent[0]["to"].startswith(contact)
    for page in (owner, numbers, agent):
        assert page.errors == [] and page.dialogs == []


def test_the_numbers_header_counts_numbers_made_and_deleted_elsewhere(live, login):
    page = login("alice", "/numbers/")
    count = page.locator("#numbers-count")
    before = count.inner_text()
    other = login("alice", "/numbers/")
    other.click("#connect-open")
    other.fill("#connect-dialog input[name=name]", "Contagem")
    other.click("#connect-dialog button[type=submit]")
    session_id = other.locator("#link-panel").get_attribute("data-session")
    expect(page.locator(f"#number-{session_id}")).to_be_visible()
    expect(count).not_to_have_text(before)
    after = count.inner_text()
    other.click("#connect-dialog [data-close]")
    other.locator(f"#number-{session_id} button.danger").click()
    other.locator("dialog.confirm button.primary").click()
    expect(page.locator(f"#number-{session_id}")).to_have_count(0)
    expect(count).to_have_text(before)
    assert after != before
