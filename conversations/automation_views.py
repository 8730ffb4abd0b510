"""A number's automatic replies page: its owner sets the business hours, greeting, away
message, idle close, limits and keyword rules. Plain form posts; a refused form comes
back with each field's message and what was typed, and nothing is saved."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.services import automation, autoreply
from conversations.templatetags.automatic import hours_states
from vbcrm.types import AuthedRequest
from whatsapp import hours
from whatsapp.models import KeywordRule, NumberSettings, WhatsAppSession
from whatsapp.selectors import (
    keyword_rule_list,
    keyword_rule_owned_get,
    session_list,
    session_owned_list,
)

DAY_LABELS = (
    ("mon", gettext_lazy("Monday")),
    ("tue", gettext_lazy("Tuesday")),
    ("wed", gettext_lazy("Wednesday")),
    ("thu", gettext_lazy("Thursday")),
    ("fri", gettext_lazy("Friday")),
    ("sat", gettext_lazy("Saturday")),
    ("sun", gettext_lazy("Sunday")),
)
CHECKBOXES = ("hours_enabled", "greeting_enabled", "away_enabled")


def _owned_or_404(request: AuthedRequest, session_id: int) -> WhatsAppSession:
    try:
        return session_owned_list(user=request.user).get(pk=session_id)
    except WhatsAppSession.DoesNotExist:
        raise Http404 from None


def _rule_or_404(request: AuthedRequest, rule_id: int) -> KeywordRule:
    rule = keyword_rule_owned_get(user=request.user, rule_id=rule_id)
    if rule is None:
        raise Http404
    return rule


def _form_values(conf: NumberSettings) -> dict[str, Any]:
    """What the form shows for the saved settings."""
    data = conf.business_hours or {}
    weekly = data.get("weekly") or {}
    values: dict[str, Any] = {f: getattr(conf, f) for f in automation.SETTINGS_FIELDS}
    for day, _label in DAY_LABELS:
        values[f"hours_{day}"] = hours.day_text(weekly.get(day) or [])
    values["exceptions"] = hours.exceptions_text(data.get("exceptions") or [])
    return values


def _posted(request: AuthedRequest) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form's values as the service takes them, and the fields already refused."""
    post = request.POST
    values: dict[str, Any] = {
        f: post.get(f, "") for f in automation.SETTINGS_FIELDS if f != "business_hours"
    }
    for flag in CHECKBOXES:
        values[flag] = post.get(flag) == "on"
    errors: dict[str, list[str]] = {}
    weekly: dict[str, list] = {}
    for day, _label in DAY_LABELS:
        field = f"hours_{day}"
        values[field] = post.get(field, "")
        try:
            weekly[day] = hours.text_intervals(values[field], field)
        except hours.ScheduleError as exc:
            errors.setdefault(exc.field, []).append(exc.message)
    values["exceptions"] = post.get("exceptions", "")
    try:
        exceptions = hours.text_exceptions(values["exceptions"])
    except hours.ScheduleError as exc:
        errors.setdefault(exc.field, []).append(exc.message)
        exceptions = []
    values["business_hours"] = {"weekly": weekly, "exceptions": exceptions}
    return values, errors


def _page(
    request: AuthedRequest,
    session: WhatsAppSession,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    conf = automation.number_settings_get(session=session)
    state = autoreply.number_open_now(conf)
    return render(
        request,
        "conversations/automatic.html",
        {
            "session": session,
            "conf": conf,
            "v": values or _form_values(conf),
            "days": [
                {
                    "field": f"hours_{day}",
                    "label": label,
                    "value": (values or _form_values(conf))[f"hours_{day}"],
                    "error": " ".join((errors or {}).get(f"hours_{day}", [])),
                }
                for day, label in DAY_LABELS
            ],
            "e": {k: " ".join(v) for k, v in (errors or {}).items()},
            "open_now": state,
            "local_now": timezone.now().astimezone(autoreply.number_zone(conf)),
            "rules": keyword_rule_list(session=session),
            "match_choices": KeywordRule.Match.choices,
            "when_choices": KeywordRule.When.choices,
            "greeting_choices": NumberSettings.GreetingOn.choices,
            "zones": sorted(hours._zone_names()),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def automatic(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned_or_404(request, session_id)
    if request.method == "GET":
        return _page(request, session)
    values, errors = _posted(request)
    if not errors:
        try:
            automation.number_settings_update(session=session, by=request.user, values=values)
        except ValidationError as exc:
            errors = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    if errors:
        return _page(request, session, values, errors, status=400)
    messages.success(request, _("Automatic replies of %(name)s saved.") % {"name": session})
    return redirect("conversations:automatic", session_id=session.pk)


def _rule_values(request: AuthedRequest) -> dict[str, Any]:
    post = request.POST
    return {
        "match": post.get("match", ""),
        "pattern": post.get("pattern", ""),
        "answer": post.get("answer", ""),
        "when": post.get("when", ""),
        "active": post.get("active") == "on",
    }


def _rule_done(
    request: AuthedRequest, session_id: int, exc: ValidationError | None, message: str
) -> HttpResponse:
    if exc is not None:
        labels = {"pattern": _("Keyword"), "answer": _("Answer"), "match": _("Match")}
        for field, items in exc.message_dict.items():
            for item in items:
                label = labels.get(field, _("When"))
                messages.error(request, f"{label}: {item}")
    else:
        messages.success(request, message)
    return redirect(reverse("conversations:automatic", args=[session_id]) + "#rules")


@login_required
@require_POST
def rule_add(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned_or_404(request, session_id)
    try:
        automation.keyword_rule_create(
            session=session, values=_rule_values(request), file=request.FILES.get("file")
        )
    except ValidationError as exc:
        return _rule_done(request, session.pk, exc, "")
    return _rule_done(request, session.pk, None, _("Rule added."))


@login_required
@require_POST
def rule_edit(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule = _rule_or_404(request, rule_id)
    try:
        automation.keyword_rule_update(
            rule=rule,
            values=_rule_values(request),
            file=request.FILES.get("file"),
            drop_file=request.POST.get("drop_file") == "on",
        )
    except ValidationError as exc:
        return _rule_done(request, rule.session_id, exc, "")
    return _rule_done(request, rule.session_id, None, _("Rule saved."))


@login_required
@require_POST
def rule_delete(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule = _rule_or_404(request, rule_id)
    automation.keyword_rule_delete(rule=rule)
    return _rule_done(request, rule.session_id, None, _("Rule deleted."))


@login_required
@require_POST
def rule_move(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule = _rule_or_404(request, rule_id)
    automation.keyword_rule_move(rule=rule, up=request.POST.get("direction") == "up")
    return _rule_done(request, rule.session_id, None, _("Rule moved."))


@login_required
@require_GET
def hours_chips(request: AuthedRequest) -> HttpResponse:
    """The inbox's business-hours chips, refreshed every few minutes."""
    sessions = list(session_list(user=request.user).select_related(None).order_by("name"))
    return render(request, "conversations/_hours_chips.html", {"states": hours_states(sessions)})
