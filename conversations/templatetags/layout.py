"""The layout around every page (templates/base.html): the head's links, the top bar,
the language form and the strings the page scripts show.

Most of it is the same on every page of a language: the links and the scripts'
strings are rendered once per language (and again when a setting changes, in tests),
and the top bar, the same markup for every user but a few values, is a Jinja2
template (``conversations/jinja2/layout/``, see conversations/jinja.py). Through
Django's template tags, one by one, it took about 1.4 ms of every page.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import URLResolver, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import get_language, get_language_info
from django.utils.translation import gettext as _

from conversations import jinja, services

register = template.Library()

# The top bar's links (base.html), by the names the template reads them with.
_TOP_BAR = {
    "manifest": "web_manifest",
    "inbox": "inbox",
    "search": "conversations:search",
    "numbers": "whatsapp:numbers",
    "contacts": "contacts:list",
    "templates": "conversations:templates",
    "queues": "conversations:queues",
    "reports": "reports:page",
    "webhooks": "conversations:webhooks",
    "admin": "admin:index",
    "profile": "profile",
    "password": "password_change",
    "logout": "logout",
    "language": "set_language",
    "availability": "conversations:availability",
}


@lru_cache(maxsize=16)
def _top_bar_urls(resolver: URLResolver, prefix: str) -> dict[str, str]:
    # keyed by what reverse() depends on, as inbox._detail_url_around is
    return {key: reverse(name) for key, name in _TOP_BAR.items()}


@register.simple_tag
def top_bar_urls() -> dict[str, str]:
    """The top bar's URLs, reversed once: ``{% url %}`` resolves its name again on every
    page (14 of them, about 1 ms a page)."""
    return _top_bar_urls(get_resolver(get_urlconf()), get_script_prefix())


@lru_cache(maxsize=16)
def _head_links(resolver: URLResolver, prefix: str) -> SafeString:
    return jinja.render("layout/head_links.html", {"urls": _top_bar_urls(resolver, prefix)})


@register.simple_tag
def head_links() -> SafeString:
    """The head's links and scripts (manifest, icons, style sheet, htmx, app.js): the
    same on every page."""
    return _head_links(get_resolver(get_urlconf()), get_script_prefix())


@lru_cache(maxsize=4)
def _languages() -> list[tuple[str, str]]:
    """``(code, name)`` of the languages the form offers, each named in itself."""
    return [
        (code, capfirst(get_language_info(code)["name_local"]))
        for code, _name in settings.LANGUAGES
    ]


def _layout_context(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    return {
        "urls": top_bar_urls(),
        "request": request,
        "user": request.user,
        "csrf_token": context.get("csrf_token"),
        "LANGUAGE_CODE": get_language(),
        "languages": _languages(),
    }


@register.simple_tag(takes_context=True)
def top_bar(context: template.Context) -> SafeString:
    """The signed-in user's top bar: search box, menu, language, availability, account."""
    values = _layout_context(context)
    request = values["request"]
    match = request.resolver_match
    searching = match is not None and match.url_name == "search"
    values["searched"] = request.GET.get("q", "") if searching else ""
    values["presence"] = services.presence_get(user=request.user, loaded=True)
    return jinja.render("layout/top_bar.html", values)


@register.simple_tag(takes_context=True)
def language_form(context: template.Context) -> SafeString:
    """The language form alone (the top bar has it): for pages shown signed out."""
    return jinja.render("layout/language_form.html", _layout_context(context))


def _js_strings() -> dict[str, object]:
    """Every string the page scripts show, translated for the page's language."""
    return {
        "reconnecting": _("Connection lost. Reconnecting…"),
        "reconnected": _("Connected again."),
        "session_expired": _("Your session has ended. Log in again."),
        "offline_send": _("Could not reach the server. Your message was kept: try again."),
        "error": _("Something went wrong. Please try again."),
        "too_large": _("The file is larger than %(mb)s MB.")
        % {"mb": settings.VBCRM_MAX_UPLOAD_BYTES // (1024 * 1024)},
        "retry_done": _("The message is back in the queue."),
        "new_message_from": _("New message from %(name)s"),
        "notify_on": _("Desktop notifications are on."),
        "notify_denied": _("Notifications are blocked in this browser's settings."),
        "sound_on": _("Sound on"),
        "sound_off": _("Sound off"),
        "no_quick_replies": _("No template starts with this."),
        "template_file": _("the template's file"),
        "shared_template": _("Shared on this number"),
        "template_loading": _("Filling in the template…"),
        "template_failed": _("This template could not be loaded. Reload the page."),
        "confirm": _("Confirm"),
        "cancel": _("Cancel"),
        "remove_file": _("Remove the file"),
        "recording": _("Recording… press ⏹ to stop."),
        "no_microphone": _("The microphone is not available in this browser."),
        "number_deleted": _("This number was deleted."),
        "status_since": _("%(status)s since %(time)s"),
        "logged_out_banner": _(
            "“%(name)s” was logged out of WhatsApp from the phone. Link it again in Numbers."
        ),
        "close": _("Close"),
        "mentioned": _("You were mentioned in a note"),
        "mention_from": _("%(name)s mentioned you · %(contact)s"),
        "note_text_only": _("A note is text only: remove the file, location or contact card."),
        "statuses": {
            "new": _("New"),
            "waiting_qr": _("Waiting for QR scan"),
            "pairing": _("Pairing"),
            "connected": _("Connected"),
            "disconnected": _("Disconnected"),
            "logged_out": _("Logged out"),
        },
    }


@lru_cache(maxsize=16)
def _js_strings_script(language: str | None) -> SafeString:
    return json_script(_js_strings(), "vb-i18n")


@register.simple_tag
def js_strings() -> SafeString:
    """The page scripts' strings, in the page's language, as a JSON script."""
    return _js_strings_script(get_language())


@receiver(setting_changed)
def _forget(**kwargs: Any) -> None:
    """What is worked out once depends on settings (URLs, static files, the upload
    limit, languages): tests change them."""
    for cached in (_top_bar_urls, _head_links, _languages, _js_strings_script):
        cached.cache_clear()
