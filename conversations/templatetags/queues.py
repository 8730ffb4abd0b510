"""Template helpers of queues: the header's availability switch, the thread's system
lines by message, and the queue map the inbox's page script labels rows with."""

from __future__ import annotations

from typing import Any

from django import template

from conversations import services

register = template.Library()


@register.inclusion_tag("conversations/_availability.html", takes_context=True)
def availability_switch(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    return {
        "presence": services.presence_get(user=request.user, loaded=True),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def lines_after(syslines: dict[int, list] | None, message_id: int) -> list:
    """The system lines that follow this message in the thread."""
    return (syslines or {}).get(message_id, [])


@register.filter
def queue_map(queues: list) -> dict[str, dict[str, str]]:
    """{id: {name, color}} of the queues the inbox labels its rows with (json_script
    escapes it for the page)."""
    return {str(q.pk): {"name": q.name, "color": q.color} for q in queues}
