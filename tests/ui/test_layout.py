"""Phones, tablets and desktops: every page fits the screen, the inbox shows one, two or
three panes, the top navigation folds into a menu, and the app can be installed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import TIMEOUT_MS
from tests.ui.test_inbox import open_conversation, row_of, sent_id

PHONE_SIZE = {"width": 360, "height": 740}
TABLET_SIZE = {"width": 820, "height": 1180}
DESKTOP_SIZE = {"width": 1280, "height": 800}
VIEWPORTS = pytest.mark.parametrize(
    "viewport", [PHONE_SIZE, TABLET_SIZE, DESKTOP_SIZE], ids=["phone", "tablet", "desktop"]
)
PAGES = [
    "/",
    "/numbers/",
    "/conversations/templates/",
    "/contacts/",
    "/contacts/fields/",
    "/profile/",
    "/password/",
    "/conversations/search/?q=mensagem",
]
MIN_TOUCH = 44


def overflow(page: Page) -> dict:
    return page.evaluate(
        """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                   wide: [...document.querySelectorAll('body *')]
                     .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                                  && e.getClientRects().length)
                     .slice(0, 5).map(e => e.tagName + '.' + e.className)})"""
    )


def assert_fits(page: Page, where: str) -> None:
    o = overflow(page)
    assert o["scroll"] <= o["inner"], (where, o)


def box(page: Page, selector: str) -> dict:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not shown"
    return b


def assert_touch_target(page: Page, selector: str) -> None:
    b = box(page, selector)
    assert b["height"] >= MIN_TOUCH and b["width"] >= MIN_TOUCH, (selector, b)


def assert_inside_viewport(page: Page, selector: str) -> None:
    b = box(page, selector)
    size = page.viewport_size
    assert b["y"] >= 0 and b["y"] + b["height"] <= size["height"], (selector, b, size)
    assert b["x"] >= 0 and b["x"] + b["width"] <= size["width"], (selector, b, size)


@VIEWPORTS
def test_no_page_scrolls_sideways(live, login, browser, viewport):
    page = login("alice")
    page.set_viewport_size(viewport)
    live.say("5511960000009", push_name="Largura Teresa", text="uma mensagem " * 40)
    for path in [*PAGES, f"/conversations/automatic/{live.session_id}/"]:
        page.goto(path)
        page.wait_for_load_state("load")
        assert_fits(page, path)
    # a conversation open, a long message in it
    page.goto("/")
    open_conversation(page, "Largura Teresa")
    assert_fits(page, "an open conversation")
    expect(page.locator("#composer")).to_be_visible()
    assert_inside_viewport(page, "#composer")
    if viewport is not DESKTOP_SIZE:
        page.click("#thread-header .pane-contact")
        expect(page.locator("#contact-panel .contact-info")).to_be_visible()
        assert_fits(page, "the contact pane")
    # the login page, logged out
    context = browser.new_context(base_url=live.url, locale="pt-BR", viewport=viewport)
    try:
        anon = context.new_page()
        anon.goto("/login/")
        assert_fits(anon, "/login/")
    finally:
        context.close()


def test_on_a_phone_an_agent_opens_answers_and_goes_back(live, login):
    page = login("alice")
    page.set_viewport_size(PHONE_SIZE)
    inbox = page.locator("#inbox")
    expect(inbox).to_have_attribute("data-pane", "list")
    expect(page.locator(".pane.list")).to_be_visible()
    expect(page.locator("#thread")).to_be_hidden()

    live.say("5511960000001", push_name="Fone Maria", text="Oi, escrevo do celular")
    row = row_of(page, "Fone Maria")
    expect(row).to_be_visible()
    assert box(page, f"#{row.get_attribute('id')} .row-link")["height"] >= MIN_TOUCH
    row.locator(".row-link").click()

    # the thread alone, the customer's message in it
    expect(inbox).to_have_attribute("data-pane", "thread")
    expect(page.locator(".pane.list")).to_be_hidden()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text("Fone Maria")
    expect(page.locator("#messages .msg.in")).to_contain_text("Oi, escrevo do celular")
    assert "/conversations/" in page.url
    assert_inside_viewport(page, "#composer")
    for control in (
        "#thread-header .pane-back",
        "#composer-text",
        "#composer .send",
        "#composer .attach",
    ):
        assert_touch_target(page, control)
    assert_touch_target(page, "#thread-header .pane-contact")

    # the answer, from the composer
    page.fill("#composer-text", "Olá! Respondendo do celular.")
    page.press("#composer-text", "Enter")
    expect(page.locator("#messages .msg.out")).to_contain_text("Olá! Respondendo do celular.")
    sent_id(live, "Olá! Respondendo do celular.")
    assert_inside_viewport(page, "#composer")

    # the contact pane and back to the thread
    page.click("#thread-header .pane-contact")
    expect(inbox).to_have_attribute("data-pane", "contact")
    expect(page.locator("#contact-panel .contact-info h3")).to_have_text("Fone Maria")
    expect(page.locator("#thread")).to_be_hidden()
    assert_touch_target(page, "#contact-panel .pane-back")
    page.click("#contact-panel .pane-back")
    expect(inbox).to_have_attribute("data-pane", "thread")
    expect(page.locator("#composer")).to_be_visible()

    # back to the list: the arrow, then the browser's own back button
    page.click("#thread-header .pane-back")
    expect(inbox).to_have_attribute("data-pane", "list")
    expect(row).to_be_visible()
    expect(page.locator("#thread")).to_be_hidden()
    page.wait_for_url(lambda url: "/conversations/" not in url)
    row.locator(".row-link").click()
    expect(inbox).to_have_attribute("data-pane", "thread")
    page.go_back()
    expect(inbox).to_have_attribute("data-pane", "list")
    expect(row).to_be_visible()
    assert page.errors == []


def test_a_tablet_shows_the_list_and_the_thread_with_the_contact_as_a_drawer(live, login):
    page = login("alice")
    page.set_viewport_size(TABLET_SIZE)
    live.say("5511960000002", push_name="Tablet Rui", text="Oi do tablet")
    open_conversation(page, "Tablet Rui")
    expect(page.locator(".pane.list")).to_be_visible()
    expect(page.locator("#thread")).to_be_visible()
    expect(page.locator("#contact-panel")).to_be_hidden()
    expect(page.locator("#thread-header .pane-back")).to_be_hidden()
    page.click("#thread-header .pane-contact")
    expect(page.locator("#contact-panel")).to_be_visible()
    expect(page.locator("#contact-panel .pane-back")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#contact-panel")).to_be_hidden()
    expect(page.locator("#thread-header .pane-contact")).to_be_focused()


def test_a_desktop_shows_all_three_panes(live, login):
    page = login("alice")
    page.set_viewport_size(DESKTOP_SIZE)
    live.say("5511960000003", push_name="Mesa Clara", text="Oi do computador")
    open_conversation(page, "Mesa Clara")
    for pane in (".pane.list", "#thread", "#contact-panel"):
        expect(page.locator(pane)).to_be_visible()
    expect(page.locator("#thread-header .pane-back")).to_be_hidden()
    expect(page.locator("#thread-header .pane-contact")).to_be_hidden()
    expect(page.locator("#menu-toggle")).to_be_hidden()
    expect(page.locator(".topbar nav a").first).to_be_visible()


def test_the_navigation_folds_into_a_menu_on_a_phone(live, login):
    page = login("alice")
    page.set_viewport_size(PHONE_SIZE)
    toggle = page.locator("#menu-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert toggle.get_attribute("aria-controls") == "topnav"
    expect(page.locator("#topnav")).to_be_hidden()
    assert_touch_target(page, "#menu-toggle")

    # by keyboard: focus the button, Enter opens, Escape closes and gives focus back
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#topnav")).to_be_visible()
    links = page.locator("#topnav a, #topnav button")
    for i in range(links.count()):
        link = links.nth(i)
        expect(link).to_be_visible()
        b = link.bounding_box()
        assert b["height"] >= MIN_TOUCH, (link.text_content(), b)
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE_SIZE["width"], (link.text_content(), b)
    assert_fits(page, "the open menu")
    page.keyboard.press("Escape")
    expect(page.locator("#topnav")).to_be_hidden()
    expect(toggle).to_be_focused()

    # a link in it works
    toggle.click()
    page.locator("#topnav nav a[href='/numbers/']").click()
    page.wait_for_url(lambda url: url.endswith("/numbers/"))
    expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "false")


def test_the_app_is_installable(live, login):
    page = login("alice")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] == "VB CRM"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert manifest["theme_color"].startswith("#")
    sizes = {(i["sizes"], i.get("purpose", "any")) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    icons = [i["src"] for i in manifest["icons"]]
    icons += [
        page.locator(sel).first.get_attribute("href")
        for sel in ("link[rel=icon]", "link[rel=apple-touch-icon]")
    ]
    for src in icons:
        r = page.request.get(src)
        assert r.status == 200, src
        assert r.headers["content-type"] == "image/png", src
    # the login page links them too, and the manifest needs no session
    context = page.context.browser.new_context(base_url=live.url)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        anon = context.new_page()
        anon.goto("/login/")
        assert anon.locator("link[rel=manifest]").get_attribute("href") == href
        assert anon.locator("link[rel=icon]").count() >= 1
        assert anon.locator("link[rel=apple-touch-icon]").count() == 1
        assert anon.request.get(href).status == 200
    finally:
        context.close()
