"""Every page under its Content-Security-Policy in a real browser: nothing is refused."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.conftest import PASSWORD, TIMEOUT_MS
from tests.ui.test_inbox import _png, open_conversation

# Runs before any script of the page: keeps every violation the browser reports.
WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def watch(page: Page) -> None:
    """Record CSP violations on this page from now on: the event, and the console line."""
    page.context.add_init_script(WATCH_VIOLATIONS)
    page.csp_console = []
    page.on(
        "console",
        lambda m: "Content Security Policy" in m.text and page.csp_console.append(m.text),
    )


def visit(page: Page, path: str):
    """Open ``path``: it answers with the policy, and nothing on it breaks it."""
    response = page.goto(path)
    assert response is not None and response.ok, (path, response and response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in policy, (path, policy)
    assert "frame-ancestors 'none'" in policy, (path, policy)
    page.wait_for_load_state("load")
    return response


def assert_no_violations(page: Page, where: str) -> None:
    # a report is dispatched as a task: let any pending one arrive first
    page.wait_for_timeout(300)
    events = page.evaluate("window.__csp || []")
    assert events == [], (where, events)
    assert page.csp_console == [], (where, page.csp_console)
    assert page.errors == [], (where, page.errors)


def test_the_login_page_keeps_its_policy(browser, live):
    context = browser.new_context(base_url=live.url, locale="pt-BR")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    watch(page)
    try:
        visit(page, "/login/")
        # the language menu (a form) works under form-action 'self'
        assert_no_violations(page, "/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        assert_no_violations(page, "after logging in")
    finally:
        context.close()


def test_the_agents_pages_keep_their_policy(live, login):
    page = login("alice")
    watch(page)
    visit(page, "/")
    # a message arrives over the socket: connect-src lets /ws/ through
    live.say("5511977770001", text="CSP check", push_name="Csp Maria")
    conversation_id = open_conversation(page, "Csp Maria")
    expect(page.locator("#messages")).to_contain_text("CSP check")
    # a file's preview before sending is a blob: image
    page.set_input_files(
        "#attach-input", {"name": "photo.png", "mimeType": "image/png", "buffer": _png()}
    )
    preview = page.locator("#attach-preview img")
    expect(preview).to_be_visible()
    assert preview.get_attribute("src").startswith("blob:")
    assert_no_violations(page, "inbox with a thread open")

    visit(page, f"/conversations/{conversation_id}/")
    expect(page.locator("#messages")).to_contain_text("CSP check")
    assert_no_violations(page, "a thread's own page")

    for path in ("/conversations/templates/", "/profile/", "/password/"):
        visit(page, path)
        assert_no_violations(page, path)


def test_the_numbers_pages_and_the_qr_code_keep_their_policy(live, login):
    page = login("alice")
    watch(page)
    visit(page, "/numbers/")
    page.click("#connect-open")
    page.fill("#connect-dialog input[name=name]", "Csp")
    page.click("#connect-dialog button[type=submit]")
    panel = page.locator("#link-panel")
    expect(panel).to_be_visible()
    # the QR code is drawn as a data: SVG image, which img-src allows
    page.wait_for_function(
        "() => { const i = document.querySelector('#link-panel img.qr');"
        " return i && i.src.startsWith('data:image/svg+xml') && i.complete && i.naturalWidth > 0; }"
    )
    assert_no_violations(page, "numbers page with the QR code")
    visit(page, f"/numbers/{live.session_id}/link/")
    assert_no_violations(page, "a number's link page")


def test_the_admin_and_the_api_docs_keep_their_policy(live, login):
    user_id = live.manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.contrib.auth import get_user_model; U = get_user_model();"
        f" U.objects.filter(username='root').exists() or U.objects.create_superuser("
        f"'root', password={PASSWORD!r});"
        " print(U.objects.get(username='alice').pk)",
    ).strip()
    page = login("root")
    watch(page)
    visit(page, "/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    assert_no_violations(page, "admin index")
    visit(page, f"/admin/auth/user/{user_id}/change/")
    expect(page.locator("#user_form")).to_be_visible()
    assert_no_violations(page, "admin user change page")
    visit(page, f"/admin/whatsapp/whatsappsession/{live.session_id}/change/")
    assert_no_violations(page, "admin number change page")
    visit(page, "/api/docs")
    # Swagger UI draws the operations from /api/openapi.json
    expect(page.locator(".opblock").first).to_be_visible()
    assert_no_violations(page, "API docs")
