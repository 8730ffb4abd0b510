"""Templates in the browser: the owner shares one on the number (an unknown variable is
refused on the field first), an agent picks it in a conversation and sees it filled in
for that contact before sending; a template's file goes with it; the page fits a phone."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.ui.conftest import _wait
from tests.ui.test_inbox import open_conversation
from tests.ui.test_layout import PHONE_SIZE, assert_fits


def _sent_to(live, phone: str) -> list[dict]:
    return [s for s in live.sent() if s["to"] == f"{phone}@s.whatsapp.net"]


def _add_template(page, shortcut: str, text: str, session_id: int | None, file=None) -> None:
    form = page.locator("form.qr-form")
    form.locator("input[name=shortcut]").fill(shortcut)
    form.locator("textarea[name=text]").fill(text)
    if session_id is not None:
        form.locator("select[name=session]").select_option(str(session_id))
    if file is not None:
        form.locator("input[type=file]").set_input_files(files=[file])
    form.locator("button[type=submit]").click()


def test_an_agent_inserts_a_shared_template_with_the_contact_s_name(live, login):
    owner = login("alice", "/conversations/templates/")
    # an unknown variable is refused on the field, and what was typed stays
    _add_template(owner, "boas", "Olá {{cliente}}!", live.session_id)
    error = owner.locator("form.qr-form .error")
    expect(error).to_contain_text("{{cliente}}")
    expect(owner.locator("form.qr-form textarea[name=text]")).to_have_value("Olá {{cliente}}!")
    expect(owner.locator("form.qr-edit input[value=boas]")).to_have_count(0)
    _add_template(
        owner, "boas", "Olá {{nome}}, aqui é {{agente}}. Protocolo {{protocolo}}.", live.session_id
    )
    expect(owner.locator("form.qr-edit input[name=shortcut][value=boas]")).to_have_count(1)

    live.say("5511972000001", push_name="Rita Modelo", text="Oi, preciso de ajuda")
    agent = login("bob")
    conversation_id = open_conversation(agent, "Rita Modelo")
    agent.type("#composer-text", "/bo")
    expect(agent.locator("#qr-picker li")).to_contain_text(["/boas"])
    agent.press("#composer-text", "Enter")
    filled = f"Olá Rita Modelo, aqui é Bob. Protocolo {conversation_id}."
    expect(agent.locator("#composer-text")).to_have_value(filled)
    agent.press("#composer-text", "Enter")
    expect(agent.locator("#messages .msg.out .body").last).to_have_text(filled)
    sent = _wait(lambda: _sent_to(live, "5511972000001"), 20, "WhatsApp to get it")
    assert sent[-1]["text"] == filled
    assert agent.errors == [] and owner.errors == []


def test_a_template_s_file_goes_with_the_filled_text(live, login):
    owner = login("alice", "/conversations/templates/")
    pdf = {"name": "tabela.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 tabela"}
    _add_template(owner, "tabela", "{{nome}}, segue a tabela.", live.session_id, pdf)
    expect(owner.locator(".qr-list a", has_text="tabela.pdf")).to_be_visible()

    live.say("5511972000002", push_name="Caio Arquivo", text="Qual o preço?")
    agent = login("bob")
    open_conversation(agent, "Caio Arquivo")
    agent.type("#composer-text", "/tab")
    agent.press("#composer-text", "Enter")
    expect(agent.locator("#composer-text")).to_have_value("Caio Arquivo, segue a tabela.")
    expect(agent.locator("#attach-preview")).to_contain_text("tabela.pdf")
    agent.click("#composer button.send")
    out = agent.locator("#messages .msg.out").last
    expect(out.locator(".file-name")).to_have_text("tabela.pdf")
    expect(out.locator(".body")).to_have_text("Caio Arquivo, segue a tabela.")
    expect(agent.locator("#attach-preview")).to_be_hidden()
    sent = _wait(lambda: _sent_to(live, "5511972000002"), 20, "WhatsApp to get it")
    assert sent[-1]["kind"] == "document"
    assert agent.errors == []


def test_the_templates_page_fits_a_phone(live, login):
    page = login("alice")
    page.set_viewport_size(PHONE_SIZE)
    page.goto("/conversations/templates/")
    _add_template(
        page,
        "longo",
        "{{saudacao}}, {{nome}}! " + "Um texto bem comprido para ver a quebra de linha. " * 6,
        None,
    )
    expect(page.locator("form.qr-edit input[name=shortcut][value=longo]")).to_have_count(1)
    page.locator(".variables-help summary").click()
    expect(page.locator(".variables-help table")).to_be_visible()
    assert_fits(page, "templates page")
    assert page.errors == []
