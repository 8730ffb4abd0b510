"""Groups in a real browser: a group message arrives, the page shows the group's subject
and picture, the member's name on the message, the participants in the contact pane;
the list's Groups / Direct filter holds for rows that arrive live too."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import expect

from tests.ui.conftest import PHONE
from tests.ui.test_inbox import _png, row_of

GROUP = "120363000000000777@g.us"


def test_a_group_shows_its_subject_members_and_senders_and_filters(live, login):
    live.control.post(
        "/api/groups",
        {
            "jid": GROUP,
            "subject": "Equipe Vendas UI",
            "participants": [
                {"phone": PHONE, "admin": True},
                {"phone": "5511970000901"},
                {"phone": "5511970000902", "name": "Caio Grupo"},
            ],
            "picture_base64": base64.b64encode(_png()).decode(),
        },
    )
    page = login("alice")
    # The page's first catch-up is answered before the group is written in: an answer
    # that old, delivered after the group's info came, would show the group's bare id.
    page.wait_for_function("() => VB.stats.synced > 0")
    live.say("5511970000901", push_name="Rita Grupo", text="Bom dia, grupo!", group={"jid": GROUP})
    row = row_of(page, "Equipe Vendas UI")
    expect(row).to_contain_text("Bom dia, grupo!")
    expect(row.locator(".group-tag")).to_be_visible()
    picture = row.locator("img.avatar")
    expect(picture).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.conversation-row img.avatar');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )

    row.locator(".row-link").click()
    expect(page.locator("#thread-header .contact-name")).to_have_text("Equipe Vendas UI")
    expect(page.locator("#thread-header img.avatar")).to_be_visible()
    expect(page.locator("#messages .msg.in .sender")).to_have_text(["Rita Grupo"])
    members = page.locator("#contact-panel .participant")
    expect(members).to_have_count(3)
    expect(members.nth(0)).to_contain_text("+5511900000001")
    expect(members.nth(0).locator(".admin-badge")).to_be_visible()
    expect(page.locator("#contact-panel .participant", has_text="Rita Grupo")).to_contain_text(
        "+5511970000901"
    )
    expect(page.locator("#contact-panel .participant", has_text="Caio Grupo")).to_have_count(1)
    expect(page.locator("#contact-panel .admin-badge")).to_have_count(1)

    # A new subject comes live to the list and the open thread's header.
    live.control.post("/api/groups", {"jid": GROUP, "subject": "Equipe Vendas Sul"})
    expect(page.locator("#thread-header .contact-name")).to_have_text("Equipe Vendas Sul")
    expect(row_of(page, "Equipe Vendas Sul")).to_be_visible()

    # Direct only: the group goes, a direct message shows, a new group message stays out.
    page.select_option("#filters select[name=kind]", "direct")
    expect(row_of(page, "Equipe Vendas Sul")).to_have_count(0)
    live.say("5511970000903", push_name="Dora Direta", text="Oi, sou cliente")
    expect(row_of(page, "Dora Direta")).to_be_visible()
    live.say("5511970000901", push_name="Rita Grupo", text="Mais uma", group={"jid": GROUP})
    live.say("5511970000903", push_name="Dora Direta", text="Depois do grupo")
    expect(row_of(page, "Dora Direta")).to_contain_text("Depois do grupo")
    expect(row_of(page, "Equipe Vendas Sul")).to_have_count(0)

    # Groups only.
    page.select_option("#filters select[name=kind]", "groups")
    expect(row_of(page, "Equipe Vendas Sul")).to_contain_text("Mais uma")
    expect(row_of(page, "Dora Direta")).to_have_count(0)
    expect(page.locator(".conversation-row .group-tag")).to_have_count(
        page.locator(".conversation-row").count()
    )
    # Leave nothing unread for the tests that count the tab title's total.
    page.select_option("#filters select[name=kind]", "")
    for name in ("Dora Direta", "Equipe Vendas Sul"):
        row_of(page, name).locator(".row-link").click()
        expect(row_of(page, name).locator(".badge")).to_have_count(0)
    expect(page).not_to_have_title(re.compile(r"^\(\d+\)"))
    assert page.errors == []
