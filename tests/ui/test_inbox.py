"""The inbox in a real browser, live: contacts write through the simulator, agents answer."""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib

from playwright.sync_api import Page, expect

from tests.ui.conftest import PHONE, LiveServer, _wait


def _png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny, red) PNG, so the browser has pixels to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def row_of(page: Page, name: str):
    return page.locator(".conversation-row", has_text=name)


def open_conversation(page: Page, name: str) -> int:
    row = row_of(page, name)
    expect(row).to_be_visible()
    row.locator(".row-link").click()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text(name)
    return int(row.get_attribute("data-id"))


def mark_page(page: Page) -> None:
    """A flag that only survives if the page is never reloaded."""
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true")


def record_statuses(page: Page) -> None:
    """Log every status our replies show, however briefly (pending may last milliseconds)."""
    page.evaluate(
        """() => {
          window.__statuses = [];
          const note = () => document.querySelectorAll('#messages .msg.out').forEach(
            m => window.__statuses.push(m.dataset.status));
          new MutationObserver(note).observe(document.getElementById('thread'),
            {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
        }"""
    )


def sent_id(live: LiveServer, text: str) -> str:
    found = _wait(
        lambda: [s for s in live.sent() if s["text"] == text], 20, f"the simulator to get {text!r}"
    )
    return found[0]["message_id"]


def test_a_contact_message_appears_in_the_open_inbox_without_reload(live, login):
    page = login("alice")
    mark_page(page)
    live.say("5511970000001", push_name="Ana Live", text="Oi, tudo bem?")
    row = row_of(page, "Ana Live")
    expect(row).to_contain_text("Oi, tudo bem?")
    expect(row.locator(".badge")).to_have_text("1")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    # a second message moves the row and counts up, still live
    live.say("5511970000001", push_name="Ana Live", text="Alguém aí?")
    expect(row.locator(".badge")).to_have_text("2")
    open_conversation(page, "Ana Live")
    expect(page.locator("#messages .msg.in .body")).to_have_text(["Oi, tudo bem?", "Alguém aí?"])
    # opening it marks it read: the badge and the tab title clear
    expect(row.locator(".badge")).to_have_count(0)
    expect(page).not_to_have_title(re.compile(r"^\(\d+\)"))
    assert_not_reloaded(page)
    assert page.errors == []


def test_the_reply_goes_out_and_its_ticks_go_sent_delivered_read(live, login):
    contact = "5511970000002"
    live.say(contact, push_name="Bruno Ticks", text="Quero um orçamento")
    page = login("alice")
    open_conversation(page, "Bruno Ticks")
    record_statuses(page)
    page.fill("#composer-text", "Claro! Já envio.")
    page.press("#composer-text", "Enter")
    reply = page.locator("#messages .msg.out", has_text="Claro! Já envio.")
    expect(reply).to_have_attribute("data-status", "sent")
    expect(page.locator("#composer-text")).to_have_value("")
    wa_id = sent_id(live, "Claro! Já envio.")
    assert "pending" in page.evaluate("window.__statuses")  # shown at once, before WhatsApp took it
    expect(reply.locator(".tick")).to_have_text("✓")
    live.control.post(
        "/api/receipts",
        {"phone": PHONE, "message_ids": [wa_id], "status": "delivered", "from": contact},
    )
    expect(reply).to_have_attribute("data-status", "delivered")
    expect(reply.locator(".tick")).to_have_text("✓✓")
    live.control.post(
        "/api/receipts", {"phone": PHONE, "message_ids": [wa_id], "status": "read", "from": contact}
    )
    expect(reply).to_have_attribute("data-status", "read")
    # blue (a darker one than WhatsApp's, for 4.5:1 contrast on the green bubble)
    expect(reply.locator(".tick.tick-read")).to_have_css("color", "rgb(11, 106, 156)")
    # Shift+Enter makes a new line instead of sending
    page.fill("#composer-text", "linha 1")
    page.press("#composer-text", "Shift+Enter")
    page.keyboard.type("linha 2")
    expect(page.locator("#composer-text")).to_have_value("linha 1\nlinha 2")
    page.press("#composer-text", "Enter")
    expect(page.locator("#messages .msg.out .body").last).to_have_text("linha 1linha 2")
    assert sent_id(live, "linha 1\nlinha 2")


def test_scrolling_up_loads_older_messages(live, login):
    contact = "5511970000003"
    batch = [
        {"to": PHONE, "from": contact, "push_name": "Carla Scroll", "text": f"msg {i}"}
        for i in range(70)
    ]
    live.control.post("/api/messages", batch)
    page = login("alice")
    expect(row_of(page, "Carla Scroll")).to_contain_text("msg 69")
    open_conversation(page, "Carla Scroll")
    messages = page.locator("#messages .msg")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("msg 69")
    page.locator("#messages").evaluate("box => { box.scrollTop = 0; }")
    expect(messages).to_have_count(70)
    expect(messages.first).to_contain_text("msg 0")
    expect(page.locator("#messages .older")).to_have_count(0)
    # one day separator for one day, however many pages
    expect(page.locator("#messages .day-sep")).to_have_count(1)


def test_an_image_arrives_and_displays(live, login):
    contact = "5511970000004"
    live.say(contact, push_name="Dora Foto", text="Vou mandar a foto")
    page = login("alice")
    open_conversation(page, "Dora Foto")
    live.say(
        contact,
        push_name="Dora Foto",
        kind="image",
        text="a foto",
        media_base64=base64.b64encode(_png()).decode(),
        mimetype="image/png",
    )
    image = page.locator("#messages .msg.kind-image img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#messages .msg.kind-image img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert image.evaluate("i => i.naturalWidth") == 4
    expect(page.locator("#messages .msg.kind-image .body")).to_have_text("a foto")
    # click to open, large
    image.click()
    expect(page.locator("#lightbox")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()


def test_a_script_in_a_message_shows_as_text_and_runs_nothing(live, login):
    contact = "5511970000005"
    evil = "<img src=x onerror=alert(1)>"
    live.say(contact, push_name="<b>Eva</b><script>alert(2)</script>", text=evil)
    page = login("alice")
    row = row_of(page, "<b>Eva</b>")
    expect(row).to_contain_text(evil)  # the preview, as text
    open_conversation(page, "<b>Eva</b><script>alert(2)</script>")
    live.say(contact, push_name="Eva", text=evil + " again")  # and live, over the socket
    bodies = page.locator("#messages .msg.in .body")
    expect(bodies).to_have_text([evil, evil + " again"])
    page.reload()  # and rendered by the page itself
    expect(page.locator("#messages .msg.in .body")).to_have_text([evil, evil + " again"])
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("#conversation-list b, #thread b").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_a_second_agent_of_the_number_sees_the_reply_live(live, login):
    live.say("5511970000006", push_name="Eli Dois", text="Bom dia")
    alice = login("alice")
    bob = login("bob")
    open_conversation(alice, "Eli Dois")
    open_conversation(bob, "Eli Dois")
    mark_page(bob)
    alice.fill("#composer-text", "Bom dia, Eli! Sou a Alice.")
    alice.press("#composer-text", "Enter")
    seen = bob.locator("#messages .msg.out", has_text="Bom dia, Eli! Sou a Alice.")
    expect(seen).to_be_visible()
    expect(seen.locator(".sender")).to_have_text("Alice")
    expect(seen).to_have_attribute("data-status", "sent")
    expect(row_of(bob, "Eli Dois")).to_contain_text("Bom dia, Eli!")
    assert_not_reloaded(bob)


def test_an_outsider_sees_none_of_it(live, login):
    outsider = login("charlie")
    alice = login("alice")
    live.say("5511970000007", push_name="Fabi Segredo", text="dados sigilosos")
    conversation_id = open_conversation(alice, "Fabi Segredo")
    alice.fill("#composer-text", "resposta sigilosa")
    alice.press("#composer-text", "Enter")
    expect(alice.locator("#messages .msg.out")).to_have_attribute("data-status", "sent")
    # everything has been broadcast by now; none of it reached charlie's open inbox
    expect(outsider.locator(".conversation-row")).to_have_count(0)
    assert "sigilos" not in outsider.content()
    response = outsider.goto(f"/conversations/{conversation_id}/")
    assert response.status == 404
    outsider.goto("/")
    expect(outsider.locator(".conversation-row")).to_have_count(0)


def test_actions_contact_panel_and_quick_replies(live, login):
    page = login("alice")
    page.goto("/conversations/templates/")
    page.fill("form.qr-form input[name=shortcut]", "pix")
    page.fill("form.qr-form textarea[name=text]", "Nossa chave PIX é 12.345.678/0001-90.")
    page.click("form.qr-form button[type=submit]")
    expect(page.locator("form.qr-edit input[name=shortcut][value=pix]")).to_have_count(1)
    live.say("5511970000008", push_name="Gil Acoes", text="Como pago?")
    page.goto("/")
    open_conversation(page, "Gil Acoes")
    me = page.locator("#inbox").get_attribute("data-me")
    header = page.locator("#thread-header")
    page.locator("#thread-header form", has=page.locator("input[value=me]")).locator(
        "button"
    ).click()
    expect(header).to_have_attribute("data-assigned", me)
    expect(page.locator("#toasts .toast.success").last).to_be_visible()
    page.locator("#thread-header button[data-status-action=closed]").click()
    expect(header).to_have_attribute("data-status", "closed")
    expect(row_of(page, "Gil Acoes")).to_have_attribute("data-status", "closed")
    page.locator("#thread-header button[data-status-action=open]").click()
    expect(header).to_have_attribute("data-status", "open")
    # the contact panel renames the contact, and the list follows live
    page.fill("#contact-panel input[name=saved_name]", "Gil Cliente VIP")
    page.fill("#contact-panel textarea[name=notes]", "Prefere PIX.")
    page.click("#contact-panel button[type=submit]")
    expect(row_of(page, "Gil Cliente VIP")).to_be_visible()
    expect(page.locator("#contact-panel textarea[name=notes]")).to_have_value("Prefere PIX.")
    # a quick reply by typing /shortcut
    page.fill("#composer-text", "")
    page.type("#composer-text", "/pi")
    expect(page.locator("#qr-picker li")).to_contain_text(["/pix"])
    page.press("#composer-text", "Enter")
    expect(page.locator("#composer-text")).to_have_value("Nossa chave PIX é 12.345.678/0001-90.")
    page.press("#composer-text", "Enter")
    expect(page.locator("#messages .msg.out .body").last).to_have_text(
        "Nossa chave PIX é 12.345.678/0001-90."
    )
    # a file over the limit is refused before it is sent
    page.set_input_files(
        "#attach-input",
        files=[{"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"0" * (17 << 20)}],
    )
    expect(page.locator("#attach-preview .error")).to_be_visible()
    assert page.dialogs == [] and page.errors == []


def test_a_sync_answer_older_than_an_event_does_not_undo_its_unread_count(live, login):
    """The page syncs when its socket opens. An answer worked out before a message came
    but delivered after its event must not take the event's count out of the tab title."""
    page = login("alice")
    held = []

    def hold(route):
        held.append((route, route.fetch()))  # answered by the server now, delivered later

    page.route(re.compile(r"/sync/\?"), hold)
    page.reload()
    while not held:
        page.wait_for_timeout(50)
    live.say("5511970000031", push_name="Rita Antes", text="Cheguei antes da resposta")
    row = row_of(page, "Rita Antes")
    expect(row.locator(".badge")).to_have_text("1")
    conversation_id = row.get_attribute("data-id")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    route, answer = held[0]
    assert conversation_id not in answer.json()["unread"]  # it is the older one
    synced = page.evaluate("VB.stats.synced")
    route.fulfill(response=answer)
    page.unroute(re.compile(r"/sync/\?"))
    # a function, not an expression: Playwright evaluates an expression with eval, which
    # the page's Content-Security-Policy refuses
    page.wait_for_function("n => VB.stats.synced > n", arg=synced)
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    expect(row.locator(".badge")).to_have_text("1")
    assert page.dialogs == [] and page.errors == []


def test_a_sync_answer_older_than_an_event_does_not_undo_its_row(live, login):
    """A conversation the sync's answer holds, read before the customer's next message
    but delivered after its event, must not put the older preview back."""
    live.say("5511970000032", push_name="Rita Linha", text="Primeira mensagem")
    page = login("alice")
    row = row_of(page, "Rita Linha")
    expect(row.locator(".preview")).to_have_text("Primeira mensagem")
    held = []

    def hold(route):
        # From long before the page: the answer holds the conversation as it is now.
        since = re.sub(r"since=[^&]*", "since=2000-01-01T00%3A00%3A00%2B00%3A00", route.request.url)
        held.append((route, route.fetch(url=since)))  # answered now, delivered later

    page.route(re.compile(r"/sync/\?"), hold)
    page.reload()
    while not held:
        page.wait_for_timeout(50)
    route, answer = held[0]
    conversation_id = int(row.get_attribute("data-id") or 0)
    older = [c for c in answer.json()["conversations"] if c["data"]["id"] == conversation_id]
    assert older and "Primeira mensagem" in older[0]["html"]  # it is the older one
    live.say("5511970000032", push_name="Rita Linha", text="Segunda mensagem")
    expect(row.locator(".preview")).to_have_text("Segunda mensagem")
    synced = page.evaluate("VB.stats.synced")
    route.fulfill(response=answer)
    page.unroute(re.compile(r"/sync/\?"))
    page.wait_for_function("n => VB.stats.synced > n", arg=synced)
    expect(row.locator(".preview")).to_have_text("Segunda mensagem")
    assert page.dialogs == [] and page.errors == []


def test_after_the_server_restarts_the_page_catches_up(live, login):
    contact = "5511970000009"
    live.say(contact, push_name="Hugo Volta", text="Antes da queda")
    page = login("alice")
    open_conversation(page, "Hugo Volta")
    mark_page(page)
    # A clean stop, a linked number and an open page notwithstanding (it once died of a
    # segmentation fault at exit, from tasks left on the event loop).
    assert live.stop() == 0
    expect(page.locator("#conn-state")).to_be_visible()
    live.say(contact, push_name="Hugo Volta", text="Enquanto estava fora")
    live.say("5511970000010", push_name="Iara Nova", text="Sou nova aqui")
    live.start()
    expect(page.locator("#messages .msg.in .body")).to_have_text(
        ["Antes da queda", "Enquanto estava fora"], timeout=45_000
    )
    expect(row_of(page, "Iara Nova")).to_be_visible()
    expect(page.locator("#conn-state")).to_be_hidden()
    assert_not_reloaded(page)
    assert page.evaluate("VB.stats.syncs") >= 2  # on the first open, and after reconnecting
    # and the page is live again
    live.say(contact, push_name="Hugo Volta", text="De volta")
    expect(page.locator("#messages .msg.in .body").last).to_have_text("De volta")


def test_a_redis_outage_leaves_no_open_page_behind(live, login, private_redis):
    """The server on a Redis of the test's own, which dies while the page is open: what
    the worker stores meanwhile reaches the page when Redis is back, without a reload
    and without the socket closing (the server tells the page to catch up)."""
    live.stop()
    live.env["REDIS_URL"] = private_redis.url
    try:
        live.start()
        _wait(live.linked, 30, "the number to connect")
        contact = "5511970000021"
        live.say(contact, push_name="Olga Queda", text="Antes da queda do Redis")
        page = login("alice")
        open_conversation(page, "Olga Queda")
        mark_page(page)
        opened = page.evaluate("VB.stats.syncs")

        private_redis.kill()
        live.say(contact, push_name="Olga Queda", text="Durante a queda")
        live.say("5511970000022", push_name="Paulo Queda", text="Cheguei durante a queda")
        time.sleep(1)
        private_redis.start()

        expect(page.locator("#messages .msg.in .body")).to_have_text(
            ["Antes da queda do Redis", "Durante a queda"], timeout=30_000
        )
        expect(row_of(page, "Paulo Queda")).to_contain_text("Cheguei durante a queda")
        # The events may arrive live (the sender retries while Redis is away) before the
        # hub, back on Redis, tells the page to catch up; either way the page is told.
        page.wait_for_function("() => VB.stats.resyncs >= 1", timeout=20_000)
        page.wait_for_function("n => VB.stats.syncs > n", arg=opened, timeout=20_000)
        expect(page.locator("#conn-state")).to_be_hidden()
        assert_not_reloaded(page)
        # and the page is live again
        live.say(contact, push_name="Olga Queda", text="Redis de volta")
        expect(page.locator("#messages .msg.in .body").last).to_have_text("Redis de volta")
        assert page.errors == []
    finally:
        live.stop()
        live.env.pop("REDIS_URL", None)
        live.start()
        _wait(live.linked, 30, "the number to connect")


def test_a_customer_message_beeps_and_notifies_when_the_agent_is_not_looking(live, login):
    page = login("alice")
    # asked politely, on a click
    ask = page.locator("#notify-ask")
    expect(ask).to_be_visible()
    page.context.grant_permissions(["notifications"], origin=live.url)
    page.click("#notify-yes")
    expect(ask).to_be_hidden()
    expect(page.locator("#toasts .toast.success").last).to_be_visible()
    live.say("5511970000011", push_name="Joana Aberta", text="oi")
    open_conversation(page, "Joana Aberta")
    page.click("#composer-text")  # a user gesture: the page may play sound now
    beeps = page.evaluate("VB.stats.beeps")  # "oi" beeped: no conversation was open
    # in the conversation the agent is looking at: no beep
    live.say("5511970000011", push_name="Joana Aberta", text="ainda aqui")
    expect(page.locator("#messages .msg.in")).to_have_count(2)
    assert page.evaluate("VB.stats.beeps") == beeps
    # in another conversation: a beep, and the tab title counts it
    expect(row_of(page, "Joana Aberta").locator(".badge")).to_have_count(0)  # read, settled
    unread = int(page.evaluate("(document.title.match(/^[(](\\d+)[)]/) || [0, 0])[1]"))
    live.say("5511970000012", push_name="Kleber Outro", text="olá?")
    expect(row_of(page, "Kleber Outro")).to_be_visible()
    assert page.evaluate("VB.stats.beeps") == beeps + 1
    expect(page).to_have_title(re.compile(rf"^\({unread + 1}\) "))
    # with the tab in the background: a beep and a desktop notification
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})"
    )
    live.say("5511970000011", push_name="Joana Aberta", text="alô?")
    expect(page.locator("#messages .msg.in")).to_have_count(3)
    page.wait_for_function(
        "n => VB.stats.notifications === 1 && VB.stats.beeps === n", arg=beeps + 2
    )
