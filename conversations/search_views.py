"""The search page: messages, private notes and contacts of the numbers the user works,
matching what was typed in the header's search box, with filters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from conversations import search_selectors
from conversations.models import Message
from conversations.search_selectors import SearchFilters
from conversations.selectors import tag_list
from vbcrm.dates import format_date
from vbcrm.params import positive_int
from vbcrm.types import AuthedRequest
from whatsapp.selectors import session_list

PAGE = 50
CONTACTS = 10

DIRECTIONS = [
    ("", gettext_lazy("Any direction")),
    (Message.Direction.INBOUND, gettext_lazy("From the customer")),
    (Message.Direction.OUTBOUND, gettext_lazy("From the team")),
    (Message.Direction.NOTE, gettext_lazy("Private notes")),
]


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True, label=gettext_lazy("Words"))
    number = forms.IntegerField(required=False, min_value=1, label=gettext_lazy("Number"))
    date_from = forms.DateField(required=False, label=gettext_lazy("From"))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"))
    direction = forms.ChoiceField(
        required=False, choices=DIRECTIONS, label=gettext_lazy("Direction")
    )
    tag = forms.IntegerField(required=False, min_value=1, label=gettext_lazy("Tag"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise ValidationError(_("The first day comes after the last one."), code="date_order")
        return data

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            session_id=data.get("number"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            direction=data.get("direction") or "",
            tag_id=data.get("tag"),
        )


@dataclass(frozen=True)
class HitRow:
    """What a result's row shows, worked out once in Python: the template's tags and
    filters, one by one for each of the page's 50 rows, were most of its rendering."""

    pk: int
    id: str  # the same, as text: an int in a template goes through number localisation
    url: str
    initial: str  # the avatar's letter, or the lock of a private note
    name: str
    phone: str
    number: str
    origin: str
    snippet: SafeString | str
    iso: str  # the message's local time, as date:"c"
    when: str  # and as date:"SHORT_DATETIME_FORMAT"


_KINDS = dict(Message.Kind.choices)  # lazy labels, translated when read


def _hit_rows(hits: list[search_selectors.SearchHit]) -> list[HitRow]:
    # what reverse() and the time zone work out for every row, worked out once
    url = reverse("conversations:detail", args=[0]).removesuffix("0/")
    zone = timezone.get_current_timezone()
    labels = {
        "note": _("Private note"),
        "inbound": _("From the customer"),
        "outbound": _("From the team"),
    }
    rows = []
    for hit in hits:
        if hit.is_note:
            origin = labels["note"]
        elif hit.is_inbound:
            origin = labels["inbound"]
        else:
            origin = labels["outbound"]
        local = hit.when.astimezone(zone)
        rows.append(
            HitRow(
                pk=hit.pk,
                id=str(hit.pk),
                url=f"{url}{hit.conversation_id}/?message={hit.pk}#message-{hit.pk}",
                initial="🔒" if hit.is_note else hit.name[:1].upper(),
                name=hit.name,
                phone=hit.phone,
                number=hit.number,
                origin=origin,
                snippet=hit.snippet or str(_KINDS.get(hit.kind, hit.kind)),
                iso=local.isoformat(),
                when=format_date(local, "SHORT_DATETIME_FORMAT"),
            )
        )
    return rows


def _options(form: SearchForm, name: str, choices: list) -> list[tuple[str, str, bool]]:
    """A filter's ``(value, label, selected)``: the one asked for is selected (as typed,
    valid or not, as the form shows it)."""
    asked = form.data.get(name)
    return [(str(value), str(label), str(value) == asked) for value, label in choices]


def _cursor(request: AuthedRequest) -> tuple[float, int] | None:
    """The last hit of the previous page: ``after_rank`` and ``after_id``."""
    pk = positive_int(request.GET.get("after_id"))
    try:
        rank = float(request.GET.get("after_rank", ""))
    except ValueError:
        return None
    return (rank, pk) if pk and math.isfinite(rank) else None


@login_required
@require_GET
def search(request: AuthedRequest) -> HttpResponse:
    """Results best first: the best match by the database's rank, then the newest.
    Each opens its conversation at the message. ``after_rank``/``after_id``: the next
    page (cursor, never OFFSET)."""
    form = SearchForm(request.GET)
    # what the page reads of the numbers: the filter's names, the search's access rule
    # (ignore_groups) and the tags' owners
    sessions = list(
        session_list(user=request.user)
        .select_related(None)
        .only("name", "owner_id", "ignore_groups")
        .order_by("name")
    )
    by_id = {s.pk: s for s in sessions}
    text = ""
    hits: list[search_selectors.SearchHit] = []
    conversations = []
    more_url = ""
    after = _cursor(request)
    if form.is_valid():
        text = form.cleaned_data["q"]
        filters = form.filters()
        rows = search_selectors.message_search(
            user=request.user,
            text=text,
            filters=filters,
            after=after,
            limit=PAGE + 1,
            sessions=by_id,
        )
        hits = rows[:PAGE]
        if len(rows) > PAGE:
            more = request.GET.copy()
            more["after_rank"] = repr(hits[-1].rank)
            more["after_id"] = str(hits[-1].pk)
            more_url = "?" + more.urlencode()
        if after is None:
            conversations = search_selectors.conversation_search(
                user=request.user, text=text, filters=filters, limit=CONTACTS, sessions=by_id
            )
    context = {
        "form": form,
        "q": text,
        "hits": _hit_rows(hits),
        "conversations": conversations,
        "more_url": more_url,
        "next_page": after is not None,
        "number_options": _options(form, "number", [(s.pk, s.name) for s in sessions]),
        "direction_options": _options(form, "direction", DIRECTIONS),
        "tag_options": _options(
            form, "tag", [(t.pk, t.name) for t in tag_list(user=request.user, sessions=sessions)]
        ),
        "indexed": search_selectors.search_available(),
    }
    return render(request, "conversations/search.html", context)
