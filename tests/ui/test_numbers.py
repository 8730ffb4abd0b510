"""The Connections page in a real browser: link a number by QR code, live."""

from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.ui.conftest import _wait


def test_the_qr_modal_shows_a_qr_and_turns_to_connected_when_scanned(live, login):
    page = login("alice", "/numbers/")
    page.click("#connect-open")
    page.fill("#connect-dialog input[name=name]", "Vendas")
    page.click("#connect-dialog button[type=submit]")
    panel = page.locator("#link-panel")
    expect(panel).to_be_visible()
    session_id = panel.get_attribute("data-session")
    qr = panel.locator("img.qr")
    expect(qr).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#link-panel img.qr');"
        " return i && i.src.startsWith('data:image/svg+xml') && i.complete && i.naturalWidth > 0; }"
    )
    # the code rotates (every second in the simulator) and the page re-draws it
    page.evaluate("window.__firstQr = document.querySelector('#link-panel img.qr').src")
    page.wait_for_function(
        "() => document.querySelector('#link-panel img.qr').src !== window.__firstQr"
    )
    live.control.post("/api/qr/scan", {"account": session_id, "phone": "5511900000077"})
    success = panel.locator(".link-state.success")
    expect(success).to_be_visible()
    expect(success.locator(".phone")).to_have_text("+5511900000077")
    card = page.locator(f"#number-{session_id}")
    expect(card).to_have_attribute("data-status", "connected")
    expect(card.locator("[data-field=phone]")).to_have_text("+5511900000077")
    page.click("#link-panel [data-close]")
    expect(page.locator("#connect-dialog")).to_be_hidden()
    # an agent of another number sees none of it; nobody but the owner gets buttons
    bob = login("bob", "/numbers/")
    expect(bob.locator(f"#number-{session_id}")).to_have_count(0)
    expect(bob.locator(".number-card .card-actions")).to_have_count(0)


def test_a_list_read_before_a_status_change_does_not_undo_it(live, login):
    """The page re-reads its cards when its socket opens. A list the server read before a
    number logged out, delivered after the logout's event, must not show it connected."""
    phone = "5511900000078"
    page = login("alice", "/numbers/")
    page.click("#connect-open")
    page.fill("#connect-dialog input[name=name]", "Ordem")
    page.click("#connect-dialog button[type=submit]")
    session_id = page.locator("#link-panel").get_attribute("data-session")
    live.scan(int(session_id or 0), phone)
    expect(page.locator("#link-panel .link-state.success")).to_be_visible()
    page.click("#connect-dialog [data-close]")
    held = []

    def hold(route):
        if route.request.resource_type != "fetch":
            route.continue_()  # the page itself
            return
        held.append((route, route.fetch()))  # read by the server now, delivered later

    page.route(re.compile(r"/numbers/$"), hold)
    page.reload()
    while not held:
        page.wait_for_timeout(50)
    route, answer = held[0]
    card = page.locator(f"#number-{session_id}")
    stale = re.search(rf'id="number-{session_id}"[^>]*data-status="(\w+)"', answer.text())
    assert stale and stale.group(1) == "connected"  # it is the older one
    live.control.post("/api/logout", {"phone": phone})
    expect(card).to_have_attribute("data-status", "logged_out")
    # a function, not an expression: the page's Content-Security-Policy refuses eval
    page.evaluate("() => { window.__cards = document.getElementById('numbers'); }")
    route.fulfill(response=answer)
    page.unroute(re.compile(r"/numbers/$"))
    page.wait_for_function("() => document.getElementById('numbers') !== window.__cards")
    assert card.get_attribute("data-status") == "logged_out"
    assert card.locator("[data-field=status]").inner_text() == "Desvinculado"
    card.locator("button.danger").click()
    page.locator("dialog.confirm button.primary").click()
    expect(card).to_have_count(0)
    assert page.dialogs == [] and page.errors == []


def test_deleting_a_number_asks_first(live, login):
    page = login("alice", "/numbers/")
    page.click("#connect-open")
    page.fill("#connect-dialog input[name=name]", "Descartavel")
    page.click("#connect-dialog button[type=submit]")
    session_id = page.locator("#link-panel").get_attribute("data-session")
    page.click("#connect-dialog [data-close]")
    card = page.locator(f"#number-{session_id}")
    expect(card).to_be_visible()
    card.locator("button.danger").click()
    confirm = page.locator("dialog.confirm")
    expect(confirm).to_be_visible()
    confirm.locator("button.link").click()  # cancel: nothing happens
    expect(card).to_be_visible()
    card.locator("button.danger").click()
    page.locator("dialog.confirm button.primary").click()
    expect(card).to_have_count(0)
    expect(page.locator("#toasts .toast.success").last).to_be_visible()
    assert page.dialogs == []


def test_the_link_window_says_when_whatsapp_cannot_be_reached(live, login):
    """Offline: the window says so within seconds, with the reason and a retry, instead of
    waiting for a QR code forever."""
    page = login("alice", "/numbers/")
    live.sim.terminate()  # WhatsApp (the simulator) is out of reach
    live.sim.wait(timeout=10)
    try:
        page.click("#connect-open")
        page.fill("#connect-dialog input[name=name]", "Sem rede")
        page.click("#connect-dialog button[type=submit]")
        panel = page.locator("#link-panel")
        session_id = panel.get_attribute("data-session")
        unreachable = panel.locator(".unreachable")
        expect(unreachable).to_be_visible(timeout=10_000)
        expect(unreachable).to_contain_text("Não foi possível alcançar os servidores do WhatsApp")
        expect(unreachable.locator(".reason")).to_contain_text(str(live.sim_port))
        expect(panel.locator(".qr-wait")).to_be_hidden()
    finally:
        live.start_simulator()
    # back online: "try again now" shows a QR code at once, not after the client's back-off
    # (up to 5 s; on a busy machine the client's own retry can come first, and the panel
    # has moved on to the QR code before the click)
    try:
        unreachable.locator("button[type=submit]").click(timeout=3_000)
    except PlaywrightTimeoutError:
        expect(unreachable).to_be_hidden()
    expect(page.locator("#link-panel img.qr")).to_be_visible(timeout=10_000)
    expect(page.locator("#link-panel .unreachable")).to_be_hidden()
    page.click("#connect-dialog [data-close]")
    page.locator(f"#number-{session_id} button.danger").click()
    page.locator("dialog.confirm button.primary").click()
    expect(page.locator(f"#number-{session_id}")).to_have_count(0)
    _wait(live.linked, 30, "the shared number to connect again")
