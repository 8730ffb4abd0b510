"""The contacts page in Chromium, at a desktop's and a phone's width: search, open a contact,
edit a custom field, see its conversations; import a CSV file and read the report."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.test_inbox import row_of
from tests.ui.test_layout import DESKTOP_SIZE, PHONE_SIZE, assert_fits

SIZES = pytest.mark.parametrize("viewport", [PHONE_SIZE, DESKTOP_SIZE], ids=["phone", "desktop"])


def add_field(page: Page, name: str, kind: str, choices: str = "") -> None:
    page.goto("/contacts/fields/")
    names = page.eval_on_selector_all(
        ".field-list input[name=name]", "els => els.map(e => e.value)"
    )
    if name in names:
        return  # made by the other viewport's run
    page.fill("#field-form input[name=name]", name)
    page.select_option("#field-form select[name=kind]", kind)
    if choices:
        page.fill("#field-form textarea[name=choices]", choices)
    page.click("#field-form button[type=submit]")
    expect(page.locator(".field-list input[name=name]").last).to_have_value(name)


@SIZES
def test_search_open_edit_a_field_and_see_the_conversations(live, login, viewport):
    tag = "phone" if viewport is PHONE_SIZE else "desk"
    phone = "5511940000001" if viewport is PHONE_SIZE else "5511940000002"
    live.say(phone, push_name=f"Contato Rosa {tag}", text="Quero saber do plano")
    page = login("alice")
    page.set_viewport_size(viewport)
    add_field(page, "Plano", "choice", "Ouro\nPrata")

    page.goto("/contacts/")
    expect(page.locator("#contact-list")).to_contain_text(f"Contato Rosa {tag}")
    assert_fits(page, "/contacts/")
    page.fill("#contact-search", f"rosa {tag}")
    rows = page.locator("#contact-list .contact-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"+{phone}")
    page.wait_for_function("() => location.search.includes('q=rosa')")
    # by phone too, typed as people write it
    page.fill("#contact-search", f"+55 11 94000-000{phone[-1]}")
    expect(rows).to_have_count(1)
    rows.first.locator("a").click()

    expect(page.locator("#contact-title")).to_have_text(f"Contato Rosa {tag}")
    assert_fits(page, "a contact")
    expect(page.locator("#contact-conversations")).to_contain_text("Support")
    expect(page.locator("#contact-conversations")).to_contain_text("Quero saber do plano")
    plan = page.locator("#contact-edit label", has_text="Plano").locator("select")
    plan.select_option("Prata")
    page.fill("#contact-edit input[name=saved_name]", f"Rosa Lima {tag}")
    page.click("#contact-edit button[type=submit]")
    expect(page.locator("#contact-title")).to_have_text(f"Rosa Lima {tag}")
    expect(plan).to_have_value("Prata")
    expect(page.locator(".toast")).to_be_visible()

    # the conversation opens in the inbox
    page.locator("#contact-conversations a").first.click()
    expect(page.locator("#messages")).to_contain_text("Quero saber do plano")
    # and is marked read (no unread left behind for the other tests' tab titles)
    expect(row_of(page, f"Rosa Lima {tag}").locator(".badge")).to_have_count(0)
    assert page.errors == []


@SIZES
def test_import_a_csv_file_and_read_the_report(live, login, viewport):
    page = login("bob", "/contacts/")
    page.set_viewport_size(viewport)
    last = "3" if viewport is PHONE_SIZE else "4"
    csv = (
        "name,phone,Plano,Sapato\n"
        f"Importada Nina {last},+55 11 94100-000{last},Ouro,42\n"
        "Sem Telefone,123,,\n"
    )
    page.set_input_files(
        "#import-form input[type=file]",
        {"name": "contatos.csv", "mimeType": "text/csv", "buffer": csv.encode()},
    )
    page.click("#import-form button[type=submit]")
    report = page.locator("#import-report")
    expect(report).to_be_visible()
    expect(report).to_contain_text("Sapato")
    expect(report.locator("table.refused tbody tr")).to_have_count(1)
    expect(report.locator("table.refused")).to_contain_text("123")
    assert_fits(page, "the import report")
    page.fill("#contact-search", f"Importada Nina {last}")
    expect(page.locator("#contact-list .contact-row")).to_have_count(1)
    expect(page.locator("#contact-list")).to_contain_text(f"+551194100000{last}")
    assert page.errors == []
