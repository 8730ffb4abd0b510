from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from tests.factories import inbound

pytestmark = pytest.mark.django_db


def test_the_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_logging_in_opens_the_inbox(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302 and response["Location"] == reverse("inbox")
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_inbox_lists_only_what_the_user_may_see(client, number, bob, charlie):
    services.message_receive(session=number, msg=inbound(push_name="<b>Ana</b>"))
    client.force_login(bob)
    body = client.get("/").content.decode()
    assert "Support" in body
    assert "&lt;b&gt;Ana&lt;/b&gt;" in body and "<b>Ana</b>" not in body
    client.force_login(charlie)
    body = client.get("/").content.decode()
    assert "Support" not in body and "Ana" not in body


def test_logout_needs_post_and_logs_out(client, alice):
    client.force_login(alice)
    assert client.get("/logout/").status_code == 405
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_password_change(client, alice):
    client.force_login(alice)
    assert client.get("/password/").status_code == 200
    response = client.post(
        "/password/",
        {
            "old_password": "pw-alice",
            "new_password1": "Nov4-Senha-Forte",
            "new_password2": "Nov4-Senha-Forte",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("Nov4-Senha-Forte")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/whatsapp/whatsappsession/",
        "/admin/whatsapp/whatsappsession/add/",
        "/admin/conversations/conversation/",
        "/admin/conversations/message/",
        "/admin/conversations/contact/",
        "/admin/conversations/quickreply/",
        "/admin/conversations/customfield/",
        "/admin/conversations/customfield/add/",
    ],
)
def test_admin_pages_open(admin_client, number, path):
    services.message_receive(session=number, msg=inbound())
    assert admin_client.get(path).status_code == 200


def test_admin_change_pages_open(admin_client, number):
    from conversations.models import Conversation, Message

    services.message_receive(session=number, msg=inbound())
    conv, msg = Conversation.objects.get(), Message.objects.get()
    assert (
        admin_client.get(f"/admin/whatsapp/whatsappsession/{number.pk}/change/").status_code == 200
    )
    assert (
        admin_client.get(f"/admin/conversations/conversation/{conv.pk}/change/").status_code == 200
    )
    assert admin_client.get(f"/admin/conversations/message/{msg.pk}/change/").status_code == 200
    assert admin_client.get("/admin/conversations/message/?q=hello").status_code == 200


def test_admin_creates_numbers_through_the_limit(admin_client, alice, settings):
    settings.VBCRM_MAX_NUMBERS_PER_OWNER = 1
    url = "/admin/whatsapp/whatsappsession/add/"
    data = {
        "owner": alice.pk,
        "name": "First",
        "history_days": 7,
        "sessionagent_set-TOTAL_FORMS": 0,
        "sessionagent_set-INITIAL_FORMS": 0,
    }
    assert admin_client.post(url, data).status_code == 302
    response = admin_client.post(url, {**data, "name": "Second"})
    assert response.status_code == 200
    assert "the most allowed" in response.content.decode()


def test_ensure_admin_prints_a_password_once(capsys):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)
    assert password not in user.password
    call_command("ensure_admin")
    assert "already exists" in capsys.readouterr().out


def test_the_top_bar_links_are_the_named_pages_under_the_script_prefix(client, alice):
    """Reversed once, not once a page: still what ``{% url %}`` gives, under the script
    prefix the site is served at."""
    from django.urls import get_script_prefix, set_script_prefix

    from conversations.templatetags.layout import _TOP_BAR, top_bar_urls

    assert top_bar_urls() == {key: reverse(name) for key, name in _TOP_BAR.items()}
    before = get_script_prefix()
    set_script_prefix("/crm/")
    try:
        urls = top_bar_urls()
        assert urls["inbox"] == "/crm/" and urls["logout"] == reverse("logout")
        assert all(url.startswith("/crm/") for url in urls.values())
    finally:
        set_script_prefix(before)
    client.force_login(alice)
    page = client.get(reverse("profile")).content.decode()
    for key in ("inbox", "numbers", "contacts", "reports", "profile", "password", "logout"):
        assert (
            f'href="{reverse(_TOP_BAR[key])}"' in page
            or f'action="{reverse(_TOP_BAR[key])}"' in page
        )
    assert f'action="{reverse("set_language")}"' in page
