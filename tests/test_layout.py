"""The layout around every page (templates/base.html, conversations.templatetags.layout):
the top bar, the language form, the head's links and the page scripts' strings, the
parts worked out once included."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import reverse

from conversations import services

pytestmark = pytest.mark.django_db


def _strings(page: str) -> dict:
    found = re.search(r'<script id="vb-i18n" type="application/json">(.*?)</script>', page)
    assert found, "no page strings"
    return json.loads(found.group(1))


def _search_box(page: str) -> str:
    found = re.search(r'<input type="search" name="q" id="top-search" value="([^"]*)"', page)
    assert found, "no search box"
    return unescape(found.group(1))


def test_the_top_bar_names_the_user_escaped_and_links_admin_for_staff_only(client, alice):
    alice.first_name, alice.last_name = "<b>Ana", "&Co</b>"
    alice.save()
    client.force_login(alice)
    page = client.get(reverse("profile")).content.decode()
    assert '<span class="who">&lt;b&gt;Ana &amp;Co&lt;/b&gt;</span>' in page
    assert f'href="{reverse("admin:index")}"' not in page
    alice.is_staff = True
    alice.save()
    page = client.get(reverse("profile")).content.decode()
    assert f'href="{reverse("admin:index")}"' in page
    # no name: the username
    alice.first_name = alice.last_name = ""
    alice.save()
    assert '<span class="who">alice</span>' in client.get(reverse("profile")).content.decode()


def test_the_search_box_keeps_the_words_on_the_search_page_only(client, alice):
    client.force_login(alice)
    words = '"><script>x</script>'
    page = client.get(reverse("conversations:search"), {"q": words}).content.decode()
    assert _search_box(page) == words
    assert "<script>x</script>" not in page
    page = client.get(reverse("profile"), {"q": words}).content.decode()
    assert _search_box(page) == ""


def test_the_forms_of_the_top_bar_come_back_to_the_page_they_were_sent_from(client, alice):
    client.force_login(alice)
    response = client.get(reverse("profile"), {"x": '<"a">'})
    page = response.content.decode()
    path = response.wsgi_request.get_full_path()
    token = response.wsgi_request.META["CSRF_COOKIE"]
    assert path.startswith(reverse("profile") + "?x=")
    nexts = re.findall(
        r'<input (?:name="next" type="hidden"|type="hidden" name="next") value="([^"]*)"', page
    )
    assert [unescape(n) for n in nexts] == [path, path]  # the language form, the switch
    # each form carries the CSRF token of the request (masked afresh each time)
    header = page[page.index('<header class="topbar"') : page.index("</header>")]
    forms = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', header)
    assert len(forms) == 3  # language, availability, log out
    from django.middleware.csrf import _unmask_cipher_token

    assert {_unmask_cipher_token(t) for t in forms} == {token}


def test_the_language_form_marks_the_page_language(client, alice):
    client.force_login(alice)
    for code in ("en", "pt-br"):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = code
        page = client.get(reverse("profile")).content.decode()
        assert f'<html lang="{code}">' in page
        selected = re.findall(r'<option value="([^"]+)" selected>', page)
        assert selected == [code]
        assert '<option value="pt-br"' in page and ">Português Brasileiro</option>" in page


def test_a_page_shown_signed_out_has_the_language_form_and_no_top_bar(client):
    page = client.get(reverse("login")).content.decode()
    assert 'id="topbar"' not in page
    footer = re.search(r'<footer class="langbar">(.*?)</footer>', page, re.S)
    assert footer and f'action="{reverse("set_language")}"' in footer.group(1)
    assert 'name="csrfmiddlewaretoken"' in footer.group(1)


def test_the_availability_switch_shows_and_flips_the_users_state(client, alice):
    client.force_login(alice)
    services.presence_set(user=alice, available=False)
    page = client.get(reverse("profile")).content.decode()
    assert 'aria-pressed="false"' in page and 'name="available" value="1"' in page
    response = client.post(
        reverse("conversations:availability"), {"available": "1"}, headers={"HX-Request": "true"}
    )
    fragment = response.content.decode()
    assert fragment.startswith('<form id="availability"')
    assert 'aria-pressed="true"' in fragment and 'name="available" value="0"' in fragment
    assert "is-available" in client.get(reverse("profile")).content.decode()


def test_the_page_strings_follow_the_language_and_the_settings(client, alice, settings):
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = _strings(client.get(reverse("profile")).content.decode())
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt-br"
    portuguese = _strings(client.get(reverse("profile")).content.decode())
    assert english["close"] == "Close" and portuguese["close"] == "Fechar"
    assert english.keys() == portuguese.keys()
    settings.VBCRM_MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    changed = _strings(client.get(reverse("profile")).content.decode())
    assert "3" in changed["too_large"] and changed["too_large"] != portuguese["too_large"]


def test_the_head_links_the_static_files(client, alice, settings):
    client.force_login(alice)
    page = client.get(reverse("profile")).content.decode()
    for name in ("css/app.css", "js/app.js", "icons/favicon-32.png"):
        assert f'"{staticfiles_storage.url(name)}"' in page
    assert f'<link rel="manifest" href="{reverse("web_manifest")}">' in page
    assert staticfiles_storage.url("django_htmx/htmx-2.min.js") in page
    settings.STATIC_URL = "/elsewhere/"
    page = client.get(reverse("profile")).content.decode()
    assert '"/elsewhere/css/' in page
