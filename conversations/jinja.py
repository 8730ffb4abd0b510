"""The inbox in Jinja2 (``jinja2/conversations/``): the conversation list's rows and the
thread's messages, rendered 50 times a page and by each web process for every socket
event in every language its sockets speak, and the rest of the inbox page around them
(its filters, the open conversation's header, tag editors and composer, the contact
pane), plus the layout's top bar (``jinja2/layout/``). Jinja2 compiles a template to
Python code, where Django's engine walks a tree of nodes for every variable and tag.

They give byte for byte what Django's templates gave (tests/conversations/
test_fragments.py renders both): values are escaped and localised as Django's
templates do, ``_()`` translates as ``{% translate %}`` (the text is not escaped), and
the inbox's filters are Django's own functions. The pages' Django templates take them
with ``{% fragment "name" %}`` (conversations.templatetags.inbox); views that answer
one alone (an htmx swap) render it by name, and Django finds it in this engine.
"""

from __future__ import annotations

from html import escape
from typing import Any

from django.template import engines
from django.template.defaultfilters import (
    filesizeformat,
    linebreaksbr,
    truncatechars,
    urlencode,
)
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]
from django.utils.translation import get_language, gettext
from django_htmx.jinja import htmx_script
from jinja2 import Environment

from vbcrm.dates import format_date

# The engine's alias in settings.TEMPLATES.
ENGINE = "fragments"


def _finalize(value: Any) -> SafeString:
    """What ``{{ value }}`` prints, as Django's templates print it: safe strings as they
    are, everything else localised (numbers, dates) and escaped with Django's entities
    (``&quot;``, ``&#x27;``: markupsafe's differ, and see only safe strings here)."""
    if value.__class__ is str:
        return SafeString(escape(value))
    if hasattr(value, "__html__"):
        return SafeString(value.__html__())
    if not isinstance(value, str):
        value = localize(template_localtime(value))
    return SafeString(escape(str(value)))


def _translate(message: str) -> SafeString:
    """``{% translate "…" %}``: the translation, not escaped (a template's own text)."""
    return SafeString(gettext(message))


def _fill(text: str, **values: Any) -> SafeString:
    """``{% blocktranslate with name=… %}``: ``_("… %(name)s …")|fill(name=…)``, the
    values escaped, the translation not."""
    return SafeString(str(text) % {key: _finalize(value) for key, value in values.items()})


def _url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def _csrf(token: Any) -> SafeString:
    """``{% csrf_token %}``: the form's hidden token field (none without a token)."""
    if not token or token == "NOTPROVIDED":  # noqa: S105 (the csrf processor's "none")
        return SafeString("")
    return SafeString(
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(str(token))}">'
    )


def _date(value: Any, format_name: str) -> str:
    """``value|date:"FORMAT"``: in the current time zone, as Django's filter gives it."""
    return format_date(template_localtime(value), format_name) if value else ""


def _system_line(event: Any) -> SafeString:
    """A thread's system line (an assignment, a queue move, a close): Django's template,
    few a page."""
    return render_to_string("conversations/_system_line.html", {"e": event})


def environment(**options: Any) -> Environment:
    from conversations.serializers import group_picture_url
    from conversations.templatetags import automatic, inbox, queues, tags

    # Django's files keep their last newline, and an include prints it.
    options["keep_trailing_newline"] = True
    # Every value printed goes through _finalize, which escapes it unless it is safe:
    # the escaping of Django's templates. Jinja's own autoescaping would only wrap each
    # value printed a second time (about a tenth of a list row's time), so it is off.
    options.pop("autoescape", None)
    env = Environment(autoescape=False, finalize=_finalize, **options)  # noqa: S701
    env.globals.update(
        _=_translate,
        url=_url,
        static=static,
        htmx_script=htmx_script,
        row_labels=tags.row_labels,
        system_line=_system_line,
        csrf=_csrf,
        tag_editor=tags.tag_editor_html,
        number_state=inbox.number_state,
        admin_label=inbox.admin_label,
        language=get_language,
        usable_tags=tags.usable,
        hours_states=automatic.hours_states,
    )
    env.filters.update(
        fill=_fill,
        linebreaksbr=lambda value: linebreaksbr(value, autoescape=True),
        truncatechars=truncatechars,
        filesizeformat=filesizeformat,
        list_row=inbox.list_row,
        list_times=inbox.list_times,
        msg_strings=inbox.msg_strings,
        sender_phone=inbox.sender_phone,
        user_label=inbox.user_label,
        vcard=inbox.vcard,
        has_media_kind=inbox.has_media_kind,
        osm_url=inbox.osm_url,
        coords=inbox.coords,
        lines_after=queues.lines_after,
        date=_date,
        json_script=json_script,
        group_picture_url=group_picture_url,
        participant_count=inbox.participant_count,
        number_options=inbox.number_options,
        queue_map=queues.queue_map,
        urlencode=urlencode,
    )
    return env


def render(name: str, context: dict[str, Any]) -> SafeString:
    """A fragment, straight from the Jinja2 environment (``render_to_string`` would ask
    Django's engine first, and add the request and CSRF token no fragment uses)."""
    template = engines[ENGINE].env.get_template(name)  # type: ignore[attr-defined]
    return SafeString(template.render(context))
