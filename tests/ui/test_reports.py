"""The reports page in a real browser: every chart drawn with the hand-computed fixture's
figures (tests/report_fixture.py), the tables beside them, and a phone's width."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import expect

from tests.report_fixture import RANGE
from tests.ui.conftest import LiveServer
from tests.ui.test_csp import assert_no_violations, watch

BUILD = """
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from conversations.models import Message
from tests.report_fixture import build
from whatsapp.models import WhatsAppSession

users = {u.username: u for u in get_user_model().objects.all()}
with transaction.atomic():
    made = build(WhatsAppSession.objects.get(pk=%d), users["alice"], users["bob"])
    # As if the worker had sent the replies then: it must not send them now.
    Message.objects.filter(conversation__in=made.values(), status="pending").update(
        status="sent", wa_timestamp=F("created_at")
    )
"""

URL = "/reports/?" + urlencode(RANGE)


def chart_data(page, chart_id: str) -> list:
    return page.evaluate(
        """(id) => { const c = window.VB.reportCharts[id];
                      return c.data.datasets.map(d => d.data); }""",
        chart_id,
    )


def test_every_chart_is_drawn_with_the_fixtures_figures(live: LiveServer, login):
    live.manage("shell", "--verbosity", "0", "-c", BUILD % live.session_id)
    page = login("alice")
    watch(page)
    page.goto(URL)
    expect(page.locator("#reports h1")).to_have_text("Relatórios")
    page.wait_for_function("() => window.VB && window.VB.reportCharts")
    for chart_id in ("messages", "conversations", "agents", "numbers", "hours"):
        drawn = page.evaluate(
            """(id) => { const c = window.VB.reportCharts[id];
                          return c.canvas.width > 0
                              && c.getDatasetMeta(0).data.length > 0; }""",
            chart_id,
        )
        assert drawn, chart_id

    assert chart_data(page, "messages") == [[3, 2], [2, 1], [1, 0], [0, 0]]
    assert chart_data(page, "conversations") == [[2, 1], [1, 1], [2, 1]]
    labels = page.evaluate("() => window.VB.reportCharts.agents.data.labels")
    assert labels == ["Alice", "Bob"]
    # minutes: first response median, p90; resolution median, p90 (Alice, Bob)
    assert chart_data(page, "agents") == [[5, 20], [5, 28], [120, 60], [120, 60]]
    assert chart_data(page, "numbers") == [[10], [26], [60], [108]]
    bubbles = page.evaluate(
        "() => window.VB.reportCharts.hours.data.datasets[0].data.map(p => [p.y, p.x, p.n])"
    )
    assert sorted(bubbles) == [[0, 12, 1], [0, 14, 1], [0, 22, 1], [1, 9, 1], [1, 23, 1]]

    table = page.locator("#table-conversations tbody tr")
    expect(table).to_have_count(2)
    expect(table.first.locator("td")).to_have_text(["2", "1", "2"])
    expect(page.locator("#sum-first-median")).to_have_text("10 min")
    assert page.errors == []
    assert_no_violations(page, "the reports page")


def test_the_reports_page_fits_a_phone(live: LiveServer, login, browser):
    page = login("alice", URL)
    page.set_viewport_size({"width": 360, "height": 740})
    page.wait_for_function("() => window.VB && window.VB.reportCharts")
    expect(page.locator("#chart-messages")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360
    page.select_option("#report-range", "7")
    expect(page.locator("input[name=from]")).to_be_hidden()
    page.click("#report-filters button[type=submit]")
    page.wait_for_url(lambda url: "range=7" in url)
    expect(page.locator("#table-messages tbody tr")).to_have_count(7)
