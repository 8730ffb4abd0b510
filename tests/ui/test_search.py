"""Search in Chromium, at a phone's and a desktop's width: a word typed in the header's
box (without its accent), the results page, and a result that opens its conversation at
the message, marked, with the newer messages loading below it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.test_inbox import row_of
from tests.ui.test_layout import DESKTOP_SIZE, PHONE_SIZE, assert_fits

SIZES = pytest.mark.parametrize("viewport", [PHONE_SIZE, DESKTOP_SIZE], ids=["phone", "desktop"])
NEWER = 55  # more than a thread's page: the message is not among the newest


@SIZES
def test_search_a_word_open_a_result_and_land_on_the_message(live, login, viewport):
    tag = "phone" if viewport is PHONE_SIZE else "desk"
    # numbers of their own: the browser tests share one server and its data
    phone = "5511961000001" if viewport is PHONE_SIZE else "5511961000002"
    name = f"Busca Clara {tag}"
    live.say(phone, push_name=name, text=f"Preciso da segunda via da cobrança {tag}, obrigado")
    for i in range(NEWER):
        live.say(phone, push_name=name, text=f"mais uma linha {i}")
    page = login("alice")
    page.set_viewport_size(viewport)
    expect(row_of(page, name)).to_contain_text(f"mais uma linha {NEWER - 1}")

    if viewport is PHONE_SIZE:
        page.click("#menu-toggle")
    page.fill("#top-search", f"cobranca {tag}")
    page.press("#top-search", "Enter")
    page.wait_for_url(re.compile(r"/conversations/search/\?q="))
    hits = page.locator("#search-hits .search-hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator("mark").first).to_have_text("cobrança")
    expect(hits.first).to_contain_text(name)
    expect(hits.first).to_contain_text(f"+{phone}")
    expect(hits.first).to_contain_text("Support")
    assert_fits(page, "the search results")

    message_id = hits.first.get_attribute("data-message")
    hits.first.locator("a").click()
    hit = page.locator(f"#message-{message_id}")
    expect(hit).to_have_class(re.compile(r"\bhit\b"))
    expect(hit).to_be_in_viewport()
    expect(hit).to_be_focused()
    expect(page.locator("#thread-wrap .contact-name")).to_have_text(name)
    assert "message=" not in page.url  # the next conversation opens at its newest
    assert_fits(page, "a thread opened at a result")

    # the newer messages load below it as the thread scrolls down, the older above
    box = page.locator("#messages")
    for _ in range(4):
        box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
        page.wait_for_timeout(300)
    expect(box.locator(".msg").last).to_contain_text(f"mais uma linha {NEWER - 1}")
    expect(box.locator(".newer")).to_have_count(0)
    assert page.errors == []


def test_the_results_page_says_what_is_wrong(live, login):
    page = login("alice", "/conversations/search/?q=x&date_from=2026-03-10&date_to=2026-03-09")
    expect(page.locator("#search-errors")).to_be_visible()
    expect(page.locator("#search-hits")).to_have_count(0)
