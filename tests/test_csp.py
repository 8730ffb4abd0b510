"""The Content-Security-Policy every answer carries (browser checks: tests/ui/test_csp.py)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from conversations import services
from conversations.models import Message
from tests.factories import inbound

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_an_html_page_carries_the_strict_policy(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert directives(response) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'", "ws://testserver", "wss://testserver"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }


def test_a_secure_page_allows_only_its_own_wss_socket(client, alice, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client.force_login(alice)
    response = client.get("/", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert directives(response)["connect-src"] == ["'self'", "wss://localhost"]


def test_no_page_allows_inline_script_or_eval(client, alice):
    client.force_login(alice)
    for path in ("/", "/numbers/", "/conversations/templates/", "/profile/", "/api/docs"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        # no inline <script> runs without the nonce, and no page has one that needs it
        body = response.content.decode()
        for tag in body.split("<script")[1:]:
            head = tag.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, (path, head)


def test_a_nonce_used_by_a_page_is_in_its_policy(rf):
    from django.http import HttpResponse

    from vbcrm.middleware import ContentSecurityPolicyMiddleware

    def view(request):
        return HttpResponse(f'<script nonce="{request.csp_nonce}">1</script>')

    request = rf.get("/")
    response = ContentSecurityPolicyMiddleware(view)(request)
    nonce = response.content.decode().split('nonce="')[1].split('"')[0]
    assert f"'nonce-{nonce}'" in directives(response)["script-src"]


def test_a_downloaded_file_keeps_its_own_sandbox_policy(client, number, bob):
    services.message_receive(session=number, msg=inbound())
    msg = Message.objects.get()
    msg.media.save("photo.png", ContentFile(b"\x89PNG fake"), save=False)
    msg.media_status = Message.MediaStatus.READY
    msg.mime_type = "image/png"
    msg.save()
    client.force_login(bob)
    response = client.get(f"/conversations/media/{msg.pk}/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
