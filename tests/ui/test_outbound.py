"""Writing first and the composer's other kinds, in a real browser against the live
server and the simulator: the "New conversation" dialog, and a location from the page."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import _wait


def _sent_to(live, phone: str) -> list[dict]:
    return [s for s in live.sent() if s["to"] == f"{phone}@s.whatsapp.net"]


def test_an_agent_starts_a_conversation_from_the_dialog(live, login):
    page = login("bob")
    page.click("#start-open")
    dialog = page.locator("#start-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("input[name=phone]").fill("+55 (11) 97100-0001")
    dialog.locator("textarea[name=text]").fill("Olá! Aqui é o suporte.")
    dialog.locator("button[type=submit]").click()
    # the conversation opens with the message, and WhatsApp gets it
    expect(dialog).to_be_hidden()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text("5511971000001")
    expect(page.locator("#messages .msg.out .body")).to_have_text(["Olá! Aqui é o suporte."])
    sent = _wait(lambda: _sent_to(live, "5511971000001"), 20, "the simulator to get it")
    assert sent[0]["text"] == "Olá! Aqui é o suporte."
    expect(page.locator("#messages .msg.out")).to_have_attribute("data-status", "sent")
    expect(page.locator(".conversation-row", has_text="5511971000001")).to_be_visible()

    # a phone that has no WhatsApp: the dialog says so and nothing is sent
    live.control.post("/api/unregistered", {"phones": ["5511971000099"]})
    page.click("#start-open")
    dialog.locator("input[name=phone]").fill("9710-0099 ext")  # no phone: refused
    dialog.locator("textarea[name=text]").fill("Olá?")
    dialog.locator("button[type=submit]").click()
    error = dialog.locator("#start-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("+55 11 98888 0001")  # the format it asks for
    dialog.locator("input[name=phone]").fill("+55 11 97100-0099")
    dialog.locator("button[type=submit]").click()
    expect(error).to_have_text("Este número não está no WhatsApp.")
    expect(dialog).to_be_visible()
    assert _sent_to(live, "5511971000099") == []
    assert page.errors == []


def test_a_location_sent_from_the_page_reaches_whatsapp(live, login):
    live.say("5511971000002", push_name="Lia Mapa", text="Onde fica a loja?")
    page = login("alice")
    row = page.locator(".conversation-row", has_text="Lia Mapa")
    row.locator(".row-link").click()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text("Lia Mapa")
    page.click(".kind-button[data-kind-button=location]")
    fields = page.locator("fieldset[data-kind=location]")
    expect(fields).to_be_visible()
    fields.locator("input[name=latitude]").fill("-23.5505")
    fields.locator("input[name=longitude]").fill("-46.6333")
    fields.locator("input[name=location_name]").fill("Loja Sé")
    page.click("#composer button.send")
    out = page.locator("#messages .msg.out .location")
    expect(out).to_contain_text("Loja Sé")
    expect(fields).to_be_hidden()
    sent = _wait(
        lambda: [s for s in _sent_to(live, "5511971000002") if s["kind"] == "location"],
        20,
        "the simulator to get the location",
    )
    assert (sent[0]["latitude"], sent[0]["longitude"]) == (-23.5505, -46.6333)
    assert sent[0]["location_name"] == "Loja Sé"
    assert page.errors == []


def test_a_voice_note_recorded_in_the_page_reaches_whatsapp_as_ogg_opus(live, login):
    if shutil.which("ffmpeg") is None:
        pytest.skip("converting voice notes needs ffmpeg (CI installs it)")
    live.say("5511971000003", push_name="Rui Voz", text="Pode mandar um áudio?")
    page = login("alice")
    page.context.grant_permissions(["microphone"])
    page.locator(".conversation-row", has_text="Rui Voz").locator(".row-link").click()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text("Rui Voz")
    record = page.locator("#record-voice")
    expect(record).to_be_visible()
    record.click()
    expect(record).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(1500)
    record.click()
    expect(page.locator("#attach-preview audio")).to_be_visible()
    page.click("#composer button.send")
    expect(page.locator("#messages .msg.out.kind-voice")).to_have_attribute("data-status", "sent")
    sent = [s for s in _sent_to(live, "5511971000003") if s["kind"] == "voice"]
    assert sent[0]["mimetype"] == "audio/ogg; codecs=opus"
    media = live.control.get_bytes(f"/api/sent/{sent[0]['message_id']}/media")
    assert media[:4] == b"OggS" and len(media) > 200
    assert page.errors == []
