"""The ``tags``, ``queues`` and ``automatic`` template libraries as the Django templates
in django_fragments/ knew them: the real ones' tags and filters, plus those the inbox
page's templates used before they became Jinja2 templates: ``{% tag_editor %}`` (it
rendered django_fragments/conversations/_tag_editor.html), ``{% tag_filter_options %}``,
``{% hours_chips %}`` and ``|queue_map``."""

from __future__ import annotations

from typing import Any

from django import template
from django.template import Context
from django.utils.safestring import SafeString

from conversations.models import Tag
from conversations.templatetags import automatic, queues, tags

register = template.Library()
for library in (tags.register, queues.register):
    register.tags.update(library.tags)
    register.filters.update(library.filters)
register.filter("queue_map", queues.queue_map)


@register.simple_tag(takes_context=True)
def tag_filter_options(context: Any) -> list[Tag]:
    return tags.usable(context["request"])


@register.inclusion_tag("conversations/_hours_chips.html")
def hours_chips(sessions: list) -> dict:
    return {"states": automatic.hours_states(sessions)}


@register.simple_tag(takes_context=True)
def tag_editor(context: Any, conversation: Any, target: str) -> SafeString:
    from tests.conversations.test_fragments import REFERENCE

    local = tags.tag_editor_context(context["request"], conversation, target)
    local["csrf_token"] = context["csrf_token"]
    return SafeString(
        REFERENCE.get_template("conversations/_tag_editor.html").render(Context(local))
    )
