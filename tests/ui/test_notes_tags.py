"""Private notes and tags in a real browser: alice's note @mentioning bob notifies him
(the mark on the row, a desktop notification), shows as a note, and never reaches
WhatsApp; a tag alice adds shows on bob's list live."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import LiveServer

# Records the notifications the page makes, and lets it make them (granted).
FAKE_NOTIFICATION = """
window.__notifications = [];
class FakeNotification {
  constructor(title, options) {
    window.__notifications.push({ title: title, body: (options || {}).body || "" });
  }
  close() {}
}
FakeNotification.permission = "granted";
FakeNotification.requestPermission = () => Promise.resolve("granted");
window.Notification = FakeNotification;
"""


def row_of(page: Page, name: str):
    return page.locator(".conversation-row", has_text=name)


def open_conversation(page: Page, name: str) -> None:
    row = row_of(page, name)
    expect(row).to_be_visible()
    row.locator(".row-link").click()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text(name)


def test_a_note_mentioning_bob_notifies_him_and_never_reaches_whatsapp(live: LiveServer, login):
    live.say("5511970000301", push_name="Nora Note", text="Preciso de ajuda")
    bob = login("bob")
    bob.context.add_init_script(FAKE_NOTIFICATION)
    bob.reload()
    expect(row_of(bob, "Nora Note")).to_be_visible()

    alice = login("alice")
    open_conversation(alice, "Nora Note")
    alice.check("#note-mode")
    expect(alice.locator("#composer")).to_have_class("composer noting")
    alice.fill("#composer-text", "@bob pode ver? <b>cliente antigo</b>")
    alice.press("#composer-text", "Enter")
    note = alice.locator("#messages .msg.note")
    expect(note).to_contain_text("<b>cliente antigo</b>")  # as text, never markup

    # bob: the mark on the row, and a notification
    row = row_of(bob, "Nora Note")
    expect(row.locator(".mention-mark")).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bmentioned\b"))
    bob.wait_for_function("() => window.__notifications.length === 1")
    notification = bob.evaluate("window.__notifications[0]")
    assert "Alice" in notification["title"] and "Nora Note" in notification["title"]
    assert "cliente antigo" in notification["body"]

    # he opens it: the note shows as a note, and the mark goes
    row.locator(".row-link").click()
    expect(bob.locator("#messages .msg.note")).to_contain_text("pode ver?")
    expect(bob.locator("#messages .msg.note .tick")).to_have_count(0)
    expect(row.locator(".mention-mark")).to_have_count(0)
    bob.reload()
    expect(row_of(bob, "Nora Note").locator(".mention-mark")).to_have_count(0)

    # a reply after it goes out; the note never does
    alice.uncheck("#note-mode")
    alice.fill("#composer-text", "Já vamos ver, Nora")
    alice.press("#composer-text", "Enter")
    expect(alice.locator("#messages .msg.out", has_text="Já vamos ver")).to_have_attribute(
        "data-status", "sent"
    )
    texts = [s.get("text", "") for s in live.sent()]
    assert "Já vamos ver, Nora" in texts
    assert not [t for t in texts if "cliente antigo" in (t or "")]
    assert not alice.errors and not bob.errors


def test_a_tag_added_in_the_header_shows_on_another_agent_s_list_live(live: LiveServer, login):
    live.say("5511970000302", push_name="Tiago Tag", text="Oi")
    bob = login("bob")
    expect(row_of(bob, "Tiago Tag")).to_be_visible()
    alice = login("alice")
    open_conversation(alice, "Tiago Tag")
    editor = alice.locator("#tags-conversation")
    editor.locator("input[name=name]").fill("<i>VIP</i>")
    editor.locator("select[name=color]").select_option("green")
    editor.locator("button[type=submit]").click()
    expect(alice.locator("#tags-conversation .tag.tag-green .tag-name")).to_have_text("<i>VIP</i>")
    label = row_of(bob, "Tiago Tag").locator(".labels .label.tag-green")
    expect(label).to_have_text("<i>VIP</i>")
    # a new message re-renders the row: the labels stay
    live.say("5511970000302", push_name="Tiago Tag", text="Mais uma")
    expect(row_of(bob, "Tiago Tag")).to_contain_text("Mais uma")
    expect(label).to_have_text("<i>VIP</i>")
    # and removed from alice's header, it leaves bob's row
    alice.locator("#tags-conversation .tag-remove").click()
    expect(alice.locator("#tags-conversation .tag")).to_have_count(0)
    expect(row_of(bob, "Tiago Tag").locator(".labels .label")).to_have_count(0)
    assert not alice.errors and not bob.errors
