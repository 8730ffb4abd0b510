"""The inbox's business-hours chips (conversations/jinja2/conversations/_hours_chips.html):
for each number the user sees that uses business hours, whether it is inside them now."""

from __future__ import annotations

from django.utils import timezone

from conversations.services.autoreply import number_open_now
from whatsapp.models import NumberSettings, WhatsAppSession
from whatsapp.selectors import number_settings_list


def hours_states(sessions: list[WhatsAppSession]) -> list[dict]:
    """Name and state of each of these numbers with business hours: no query when their
    settings came with them (``select_related("number_settings")``), one otherwise."""
    now = timezone.now()
    loaded = all(WhatsAppSession.number_settings.is_cached(s) for s in sessions)
    confs: list[NumberSettings | None] = (
        [getattr(s, "number_settings", None) for s in sessions]
        if loaded
        else list(number_settings_list(session_ids=[s.pk for s in sessions]))
    )
    by_id = {s.pk: s for s in sessions}
    out = []
    for conf in confs:
        if conf is None or not conf.hours_enabled:
            continue
        state = number_open_now(conf, now)
        if state is not None:
            out.append({"session": by_id[conf.session_id], "open": state})
    return sorted(out, key=lambda row: row["session"].name)
