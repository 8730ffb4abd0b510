"""Template helpers of queues: the thread's system lines by message, and the queue map
the inbox's page script labels rows with (the header's availability switch is the
layout's: conversations/templatetags/layout.py)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def lines_after(syslines: dict[int, list] | None, message_id: int) -> list:
    """The system lines that follow this message in the thread."""
    return (syslines or {}).get(message_id, [])


def queue_map(queues: list) -> dict[str, dict[str, str]]:
    """{id: {name, color}} of the queues the inbox labels its rows with (json_script
    escapes it for the page)."""
    return {str(q.pk): {"name": q.name, "color": q.color} for q in queues}
