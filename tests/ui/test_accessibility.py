"""Accessibility: axe-core on every page at a phone's and a desktop's width (no critical or
serious violation), the inbox by keyboard alone, and new messages told to screen readers.

axe-core comes from npm (package.json, pinned in package-lock.json): ``npm ci`` puts it in
node_modules/ (``make test`` runs it when npm is there). Without it the axe tests skip.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import PASSWORD, ROOT, TIMEOUT_MS
from tests.ui.test_inbox import open_conversation, row_of, sent_id

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE_SIZE = {"width": 360, "height": 740}
DESKTOP_SIZE = {"width": 1280, "height": 800}
BLOCKING = ("critical", "serious")

needs_axe = pytest.mark.skipif(
    not AXE.exists(),
    reason="axe-core is not installed: run `npm ci` (make test does when npm is available)",
)


def axe_violations(page: Page, where: str) -> list[str]:
    """The page's critical and serious violations, one line each: rule, help, targets."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations'],
                                    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa',
                                              'wcag21a', 'wcag21aa', 'best-practice']}})"""
    )
    found = []
    for v in result["violations"]:
        if v["impact"] not in BLOCKING:
            continue
        targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:6]
        found.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']}) {targets}")
    return found


def new_context(browser, live, viewport: dict):
    # The strict CSP would refuse axe's injected script: this context ignores it.
    context = browser.new_context(
        base_url=live.url, locale="pt-BR", viewport=viewport, bypass_csp=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


@needs_axe
@pytest.mark.parametrize("viewport", [PHONE_SIZE, DESKTOP_SIZE], ids=["phone", "desktop"])
def test_no_page_has_a_serious_accessibility_violation(browser, live, viewport):
    live.say("5511950000001", push_name="Axe Beatriz", text="Olá, preciso de ajuda")
    context = new_context(browser, live, viewport)
    found: list[str] = []
    try:
        page = context.new_page()
        page.goto("/login/")
        found += axe_violations(page, "/login/")
        log_in(page, "alice")

        # the inbox, the list, then a conversation open (its contact pane too on a phone)
        row = row_of(page, "Axe Beatriz")
        expect(row).to_be_visible()
        found += axe_violations(page, "the inbox")
        open_conversation(page, "Axe Beatriz")
        expect(page.locator("#messages")).to_contain_text("preciso de ajuda")
        found += axe_violations(page, "an open conversation")
        if viewport is PHONE_SIZE:
            page.click("#thread-header .pane-contact")
            expect(page.locator("#contact-panel .contact-info")).to_be_visible()
            found += axe_violations(page, "the contact pane")
            page.click("#menu-toggle")
            expect(page.locator("#topnav")).to_be_visible()
            found += axe_violations(page, "the open menu")

        page.goto("/numbers/")
        found += axe_violations(page, "/numbers/")
        page.click("#connect-open")
        expect(page.locator("#connect-dialog")).to_be_visible()
        found += axe_violations(page, "the connect window")

        for path in (
            "/conversations/templates/",
            f"/conversations/automatic/{live.session_id}/",
            "/conversations/webhooks/",
            "/profile/",
            "/password/",
            "/reports/",
        ):
            page.goto(path)
            found += axe_violations(page, path)

        # search results (a contact and a message), and a thread opened at a result
        page.goto("/conversations/search/?q=ajuda")
        expect(page.locator("#search-hits .search-hit").first).to_be_visible()
        found += axe_violations(page, "the search results")
        page.goto("/conversations/search/?q=Axe+Beatriz&date_from=2026-03-10&date_to=2026-03-09")
        expect(page.locator("#search-errors")).to_be_visible()
        found += axe_violations(page, "the search page's errors")
        page.goto("/conversations/search/?q=ajuda")
        page.locator("#search-hits .search-hit a").first.click()
        expect(page.locator("#messages .msg.hit")).to_be_visible()
        found += axe_violations(page, "a thread opened at a result")

        # the contacts page, one contact (with a custom field), its report, the fields page
        page.goto("/contacts/fields/")
        if not page.locator(".field-list input[value='Axe campo']").count():
            page.fill("#field-form input[name=name]", "Axe campo")
            page.click("#field-form button[type=submit]")
        found += axe_violations(page, "/contacts/fields/")
        page.goto("/contacts/")
        found += axe_violations(page, "/contacts/")
        page.locator("#contact-list a", has_text="Axe Beatriz").first.click()
        expect(page.locator("#contact-title")).to_have_text("Axe Beatriz")
        found += axe_violations(page, "a contact")
        page.goto("/contacts/")
        page.set_input_files(
            "#import-form input[type=file]",
            {"name": "a.csv", "mimeType": "text/csv", "buffer": b"phone,x\n123,1\n"},
        )
        page.click("#import-form button[type=submit]")
        expect(page.locator("#import-report")).to_be_visible()
        found += axe_violations(page, "the import report")
    finally:
        context.close()
    assert not found, "axe-core found:\n" + "\n".join(found)


def test_the_inbox_works_by_keyboard_alone(live, login):
    page = login("alice")
    live.say("5511950000002", push_name="Teclado Joana", text="Vocês abrem sábado?")
    row = row_of(page, "Teclado Joana")
    expect(row).to_be_visible()
    expect(page.locator(".conversation-row").first).to_have_id(row.get_attribute("id"))

    # Tab from the top of the page to the first conversation of the list
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => !!document.activeElement.closest('.row-link')"):
            break
    else:
        raise AssertionError("Tab never reached the conversation list")
    expect(row.locator(".row-link")).to_be_focused()

    # Enter opens it and puts the keyboard in the composer
    page.keyboard.press("Enter")
    expect(page.locator("#thread-wrap .contact-name")).to_have_text("Teclado Joana")
    expect(page.locator("#composer-text")).to_be_focused()
    page.keyboard.type("Abrimos, das 9h às 13h.")
    page.keyboard.press("Enter")
    expect(page.locator("#messages .msg.out")).to_contain_text("Abrimos, das 9h às 13h.")
    sent_id(live, "Abrimos, das 9h às 13h.")

    # the assign control is reachable and labelled: Shift+Tab back to it, Enter assigns
    assign = page.locator("#thread-header button[type=submit]", has_text="Assumir")
    for _ in range(30):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => document.activeElement.closest('#thread-header') !== null"):
            if assign.evaluate("b => b === document.activeElement"):
                break
    else:
        raise AssertionError("Shift+Tab never reached the assign button")
    page.keyboard.press("Enter")
    expect(page.locator("#thread-header .assignee")).to_contain_text("Alice")
    expect(page.locator("#thread-header select[name=assignee]")).to_have_accessible_name(
        "Atendente"
    )
    assert page.errors == []


def test_a_customer_message_is_announced_politely(live, login):
    page = login("alice")
    region = page.locator("#announcer")
    expect(region).to_have_attribute("aria-live", "polite")
    live.say("5511950000003", push_name="Aviso Helena", text="Primeira")
    expect(region).to_contain_text("Nova mensagem de Aviso Helena")
    assert region.locator("p").count() == 1

    # in the open conversation too; the agent's own reply is not announced
    open_conversation(page, "Aviso Helena")
    live.say("5511950000003", push_name="Aviso Helena", text="Segunda")
    expect(page.locator("#messages")).to_contain_text("Segunda")
    expect(region.locator("p")).to_have_count(2)
    page.fill("#composer-text", "Resposta do agente")
    page.press("#composer-text", "Enter")
    expect(page.locator("#messages .msg.out")).to_contain_text("Resposta do agente")
    sent_id(live, "Resposta do agente")
    page.wait_for_timeout(500)
    expect(region.locator("p")).to_have_count(2)
    assert page.errors == []
