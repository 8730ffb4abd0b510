"""Template helpers for tags: the editor in the thread header and the contact pane, the
labels of a list row, and the inbox's tag filter."""

from __future__ import annotations

from html import escape
from typing import Any

from django import template
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils.safestring import SafeString

from conversations import jinja, selectors
from conversations.models import Conversation, Tag
from whatsapp.models import WhatsAppSession

register = template.Library()


def tag_editor_html(
    request: HttpRequest, conversation: Conversation, target: str, csrf_token: Any = None
) -> SafeString:
    """The tag editor of ``conversation`` (``target`` "conversation") or of its contact.
    ``csrf_token``: the page's, when it is part of one (its forms then carry the same)."""
    context = tag_editor_context(request, conversation, target)
    context["request"], context["csrf_token"] = request, csrf_token or get_token(request)
    return jinja.render("conversations/_tag_editor.html", context)


def tag_editor_context(request: HttpRequest, conversation: Conversation, target: str) -> dict:
    """What a tag editor shows: the tags applied, and those the user may add."""
    owner = conversation.contact if target == "contact" else conversation
    tags = _prefetched(owner, "tags")  # a page reads them with its rows
    if tags is None:
        selectors.with_tags([conversation])  # both editors' tags, in one query
        tags = _prefetched(owner, "tags") or []
    applied = {t.pk for t in tags}
    options = [t for t in usable(request) if t.owner_id == conversation.session.owner_id]
    return {
        "conversation": conversation,
        "target": target,
        "tags": tags,
        "options": [t for t in options if t.pk not in applied],
        "colors": Tag.Color.choices,
    }


def _prefetched(obj: Any, name: str) -> list[Tag] | None:
    cache = getattr(obj, "_prefetched_objects_cache", {})
    return list(cache[name]) if name in cache else None


@register.simple_tag
def row_labels(c: Conversation) -> SafeString:
    """A list row's tags (the conversation's, then its contact's), when the selector
    loaded them (``selectors.with_tags``). A row rendered from a live event has none
    loaded: ``data-known="0"`` tells the page to keep the labels it shows."""
    own = _prefetched(c, "tags")
    of_contact = _prefetched(c.contact, "tags")
    if own is None or of_contact is None:
        return SafeString('<span class="labels" data-known="0"></span>')
    seen: set[int] = set()
    tags = []
    for t in [*own, *of_contact]:
        if t.pk not in seen:
            seen.add(t.pk)
            tags.append(t)
    # html.escape is Django's escape without its lazy wrapper; format_html's checks cost
    # more than the rest of the row's labels
    chips = "".join(
        f'<span class="label tag-{escape(t.color)}">{escape(t.name)}</span>' for t in tags
    )
    return SafeString(f'<span class="labels" data-known="1">{chips}</span>')


def usable_from(request: HttpRequest, sessions: list[WhatsAppSession]) -> None:
    """For a page that has read the numbers the user sees (``session_list``): the tags
    they may use are those of these numbers' owners, read when first needed."""
    request._vb_tag_numbers = sessions  # type: ignore[attr-defined]


def usable(request: HttpRequest) -> list[Tag]:
    """The tags the user may use (those of the owners of the numbers they work), read
    once per request: the inbox's filter and both editors."""
    if not hasattr(request, "_vb_tags"):
        numbers = getattr(request, "_vb_tag_numbers", None)
        request._vb_tags = selectors.tag_list(  # type: ignore[attr-defined]
            user=request.user, sessions=numbers
        )
    return request._vb_tags  # type: ignore[attr-defined]
