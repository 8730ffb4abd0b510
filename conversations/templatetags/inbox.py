"""Template helpers of the inbox pages: message times, day labels, contact cards, JS strings."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from django import template
from django.urls import URLResolver, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from conversations import jinja
from conversations import vcard as vcard_parse
from conversations.models import FILE_KINDS, Conversation, Message
from conversations.serializers import group_picture_url
from vbcrm.dates import format_date
from whatsapp.models import WhatsAppSession

register = template.Library()
register.filter("group_picture_url", group_picture_url)


@register.filter
def msg_time(m: Message) -> datetime:
    """When a message was said: WhatsApp's time when known (history imports are
    stored long after they were written), else when we stored it."""
    return m.wa_timestamp or m.created_at


@register.filter
def msg_day(m: Message) -> str:
    """The local day a message was said, as ``msg_time|date:"Y-m-d"`` gives it: what
    the thread compares to place its day separators."""
    return timezone.localtime(msg_time(m)).date().isoformat()


@register.filter
def msg_times(m: Message) -> dict[str, str]:
    """Every form of a message's time its fragment shows, worked out once (the
    fragment is rendered for each message a socket receives: the date filters, one
    by one, were most of its cost). Same strings as the ``date``/``time`` filters."""
    local = timezone.localtime(msg_time(m))
    # today in the same time zone, without asking for the current one again
    today = timezone.now().astimezone(local.tzinfo).date()
    return {
        "day": local.date().isoformat(),  # date:"Y-m-d"
        "day_label": _day_label(local.date(), today),
        "iso": local.isoformat(),  # date:"c"
        "title": format_date(local, "DATETIME_FORMAT"),
        "hm": local.strftime("%H:%M"),  # time:"H:i"
    }


_MESSAGE_STATUS = dict(Message.Status.choices)  # lazy labels, translated when read


@register.filter
def msg_strings(m: Message) -> dict[str, str]:
    """``msg_times`` and the other strings of a message's fragment that are more than
    an attribute: its ids, version and rank (as text: an int in a template goes
    through number localisation) and its status label (``get_status_display``)."""
    return {
        **msg_times(m),
        "id": str(m.pk),
        "conversation": str(m.conversation_id),
        "version": str(epoch_us(m.updated_at)),
        "rank": str(status_rank(m)),
        "status_label": str(_MESSAGE_STATUS.get(m.status, m.status)),
    }


@register.filter
def epoch_ms(value: datetime | None) -> int:
    """A sort key the page script compares as a number (ISO strings don't sort when
    some carry microseconds and some don't)."""
    return int(value.timestamp() * 1000) if value else 0


@register.filter
def epoch_us(value: datetime | None) -> int:
    """A message's version: a page that gets two renderings of one message (its own
    POST's answer, the socket's events, a sync) keeps the newest."""
    return int(value.timestamp() * 1_000_000) if value else 0


_STATUS_RANK = {"pending": 0, "sent": 1, "failed": 1, "delivered": 2, "read": 3}


@register.filter
def status_rank(m: Message) -> int:
    """Breaks version ties: receipts only move a message forward."""
    return _STATUS_RANK.get(m.status, 0)


@register.filter
def day_label(value: datetime | None) -> str:
    """ "Today", "Yesterday" or the date, for the day separators of a thread."""
    if value is None:
        return ""
    return _day_label(timezone.localtime(value).date())


def _day_label(day: date, today: date | None = None) -> str:
    today = today or timezone.localdate()
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    return format_date(day, "DATE_FORMAT")


def _list_label(local: datetime) -> str:
    """A conversation's last activity as the list shows it: the time today, else the date."""
    # today in the same time zone, without asking for the current one again
    today = timezone.now().astimezone(local.tzinfo).date()
    if local.date() == today:
        return local.strftime("%H:%M")  # time:"H:i"
    if local.date() == today - timedelta(days=1):
        return _("Yesterday")
    return format_date(local.date(), "SHORT_DATE_FORMAT")


@register.filter
def list_times(value: datetime | None) -> dict[str, str]:
    """A list row's time, worked out once: ``iso`` (what ``date:"c"`` gives) and
    ``label`` (the time today, "Yesterday", else the short date)."""
    if value is None:
        return {"iso": "", "label": ""}
    local = timezone.localtime(value)
    return {"iso": local.isoformat(), "label": _list_label(local)}


# Any id of the URL's shape: what surrounds it in the reversed URL is the same for all.
_SAMPLE_ID = 918273645


@lru_cache(maxsize=16)
def _detail_url_around(resolver: URLResolver, prefix: str) -> tuple[str, str]:
    # The key names what reverse() depends on: the URLconf (its resolver object is
    # replaced when the URLconf changes) and the script prefix.
    head, _sample, tail = reverse("conversations:detail", args=[_SAMPLE_ID]).rpartition(
        str(_SAMPLE_ID)
    )
    return head, tail


def conversation_url(pk: int) -> str:
    """``reverse("conversations:detail", args=[pk])``, without resolving the name for
    each row of the list (a reverse() costs more than the rest of a row's strings)."""
    head, tail = _detail_url_around(get_resolver(get_urlconf()), get_script_prefix())
    return f"{head}{pk}{tail}"


@register.filter
def sender_phone(jid: str) -> str:
    """A group member's address as the thread shows it when they gave no name:
    ``+5511…`` for a phone JID, the bare id otherwise."""
    user = jid.split("@", 1)[0].split(":", 1)[0]
    return f"+{user}" if jid.endswith("@s.whatsapp.net") else user


_CONVERSATION_STATUS = dict(Conversation.Status.choices)  # lazy labels, translated when read


@register.filter
def list_row(c: Conversation) -> dict[str, object]:
    """Every string of a list row that is more than an attribute, worked out once (the
    row is rendered 50 times a page and for each socket event). Same strings as the
    tags and filters they replace: ``{% url 'conversations:detail' c.pk %}``, the
    badge's ``{% blocktranslate count %}``, ``get_status_display``, ``list_times``."""
    name = c.contact.display_name
    n = c.unread_count
    times = list_times(c.last_message_at)
    return {
        "url": conversation_url(c.pk),
        # Numbers as text: an int in a template goes through number localisation.
        "id": str(c.pk),
        "ts": str(epoch_ms(c.last_message_at)),
        "unread": str(n),
        "session": str(c.session_id),
        "assigned": str(c.assigned_to_id) if c.assigned_to_id else "",
        "initial": name[:1].upper(),
        "picture": group_picture_url(c.contact),
        "name": name,
        "iso": times["iso"],
        "label": times["label"],
        "badge": ngettext("%(n)s unread message", "%(n)s unread messages", n) % {"n": n}
        if n
        else "",
        "status": str(_CONVERSATION_STATUS.get(c.status, c.status)),
        "number": c.session.name,
        "agent": user_label(c.assigned_to) if c.assigned_to_id else "",
    }


_SESSION_STATUS = dict(WhatsAppSession.Status.choices)  # lazy labels, translated when read


@register.filter
def number_options(sessions: list[WhatsAppSession], selected_id: int | None) -> list[dict]:
    """The numbers' options (the list's filter, the new conversation's dialog): each
    number's id (as text), name, phone, status label (``get_status_display``), whether
    it is connected, and whether it is the one selected."""
    return [
        {
            "id": str(s.pk),
            "name": s.name,
            "phone": s.phone_number,
            "status": str(_SESSION_STATUS.get(s.status, s.status)),
            "connected": s.status == WhatsAppSession.Status.CONNECTED,
            "selected": s.pk == selected_id,
        }
        for s in sessions
    ]


@register.filter
def vcard(body: str) -> vcard_parse.Card:
    """The name and phones of a shared contact, to show as a card."""
    return vcard_parse.parse(body)


@register.filter
def has_media_kind(m: Message) -> bool:
    return m.kind in FILE_KINDS


@register.filter
def osm_url(m: Message) -> str:
    lat, lon = m.latitude, m.longitude
    return (
        f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=16/{lat:.6f}/{lon:.6f}"
    )


@register.filter
def coords(m: Message) -> str:
    # Not localised on purpose: "-23,55, -46,63" (pt-BR decimals) would read as four numbers.
    return f"{m.latitude:.5f}, {m.longitude:.5f}"


@register.filter
def user_label(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.simple_tag
def number_state(session: WhatsAppSession) -> str:
    """ "Disconnected since 14:02": the number's state, for the bar over the composer."""
    status = session.get_status_display()
    since = session.status_since
    if since is None:
        return str(status)
    local = timezone.localtime(since)
    same_day = local.date() == timezone.localdate()
    if same_day:
        when = formats.time_format(local, "TIME_FORMAT")
    else:
        when = format_date(local, "SHORT_DATETIME_FORMAT")
    return _("%(status)s since %(time)s") % {"status": status, "time": when}


def participant_count(n: int) -> SafeString:
    """A group's members' heading: "3 participants" (``{% blocktranslate count %}``)."""
    text = ngettext("%(n)s participant", "%(n)s participants", n)
    return SafeString(text % {"n": formats.localize(n)})


def admin_label() -> str:
    """A group admin's badge in the contact pane."""
    return pgettext("group member", "Admin")


@register.simple_tag(takes_context=True)
def fragment(context: template.Context, name: str) -> SafeString:
    """A Jinja2 fragment (conversations/jinja.py) in a Django page, with the page's
    context: ``{% fragment "conversations/_messages.html" %}`` as an include."""
    return jinja.render(name, context.flatten())  # type: ignore[arg-type]
