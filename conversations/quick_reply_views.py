"""The templates page (quick replies grown up: the composer offers them on "/"), the
file of a template, and the composer's preview of one in a conversation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations import selectors, services
from conversations.files import template_file_response
from conversations.models import Conversation, QuickReply
from vbcrm.errors import error_items
from vbcrm.params import positive_int
from vbcrm.types import AuthedRequest
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_owned_list

# The variables table of the page: one row per value, its spellings.
VARIABLE_HELP = [
    ("{{nome}} · {{name}}", gettext_noop("The contact's name")),
    ("{{agente}} · {{agent}}", gettext_noop("Your name (the agent sending it)")),
    ("{{numero}} · {{number}}", gettext_noop("The number's phone (or its name)")),
    ("{{saudacao}}", gettext_noop("bom dia / boa tarde / boa noite, by the number's clock")),
    ("{{greeting}}", gettext_noop("good morning / good afternoon / good evening, in English")),
    ("{{protocolo}} · {{protocol}}", gettext_noop("The conversation's protocol (its id)")),
]


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for field, _code, message in error_items(exc):
        key = field if field in {"shortcut", "text", "file", "session"} else "text"
        errors.setdefault(key, message)
    return errors


def _page(
    request: AuthedRequest,
    status: int = 200,
    *,
    edit_id: int | None = None,
    edit_errors: dict[str, str] | None = None,
    edit_values: dict[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    """The page; a refused edit shows its row as it was sent, its errors under it."""
    user = request.user
    rows = []
    for t in selectors.template_list(user=user):
        editing = t.pk == edit_id
        rows.append(
            {
                "t": t,
                "can_edit": selectors.template_can_edit(user=user, template=t),
                "errors": (edit_errors or {}) if editing else {},
                "shortcut": (edit_values or {}).get("shortcut", "") if editing else t.shortcut,
                "text": (edit_values or {}).get("text", "") if editing else t.text,
            }
        )
    context = {
        "templates": rows,
        "owned_sessions": list(session_owned_list(user=user).order_by("name")),
        "variables": [(names, _(meaning)) for names, meaning in VARIABLE_HELP],
        "text_placeholder": _("e.g. {{saudacao}}, {{nome}}! Your protocol is {{protocolo}}."),
        "form_errors": {},
        "values": {"shortcut": "", "text": "", "session": ""},
        **extra,
    }
    return render(request, "conversations/quick_replies.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def templates(request: AuthedRequest) -> HttpResponse:
    """The user's templates and those shared on the numbers they work: list, add (POST)
    and, from each row they may change, edit or delete."""
    if request.method != "POST":
        return _page(request)
    values = {k: request.POST.get(k, "") for k in ("shortcut", "text", "session")}
    session = None
    session_id = positive_int(values["session"])
    try:
        if session_id is not None:
            try:
                session = session_owned_list(user=request.user).get(pk=session_id)
            except WhatsAppSession.DoesNotExist:
                raise ValidationError(
                    {"session": _("Only the number's owner can share templates on it.")}
                ) from None
        template = services.quick_reply_create(
            owner=request.user,
            shortcut=values["shortcut"],
            text=values["text"],
            session=session,
            upload=request.FILES.get("file"),
        )
    except ValidationError as exc:
        return _page(request, 400, form_errors=_errors(exc), values=values)
    messages.success(request, _("Template /%(s)s saved.") % {"s": template.shortcut})
    return redirect("conversations:templates")


def _editable_or_404(request: AuthedRequest, template_id: int) -> QuickReply:
    try:
        return selectors.template_editable_get(user=request.user, template_id=template_id)
    except QuickReply.DoesNotExist:
        raise Http404 from None


@login_required
@require_POST
def template_edit(request: AuthedRequest, template_id: int) -> HttpResponse:
    template = _editable_or_404(request, template_id)
    values = {k: request.POST.get(k, "") for k in ("shortcut", "text")}
    try:
        services.quick_reply_update(
            quick_reply=template,
            shortcut=values["shortcut"],
            text=values["text"],
            upload=request.FILES.get("file"),
            remove_file=request.POST.get("remove_file") == "1",
        )
    except ValidationError as exc:
        return _page(
            request, 400, edit_id=template.pk, edit_errors=_errors(exc), edit_values=values
        )
    messages.success(request, _("Template /%(s)s saved.") % {"s": template.shortcut})
    return redirect("conversations:templates")


@login_required
@require_POST
def template_delete(request: AuthedRequest, template_id: int) -> HttpResponse:
    template = _editable_or_404(request, template_id)
    services.quick_reply_delete(quick_reply=template)
    messages.success(request, _("Template /%(s)s deleted.") % {"s": template.shortcut})
    return redirect("conversations:templates")


@login_required
@require_GET
def template_file(request: AuthedRequest, template_id: int) -> FileResponse:
    """A template's file, only for those who may use the template (and staff)."""
    try:
        template = selectors.template_file_get(user=request.user, template_id=template_id)
    except QuickReply.DoesNotExist:
        raise Http404 from None
    response = template_file_response(template, as_attachment=request.GET.get("download") == "1")
    if response is None:
        raise Http404
    return response


def template_file_data(template: QuickReply, url: str) -> dict[str, Any] | None:
    if not template.file:
        return None
    return {
        "name": template.file_name,
        "size": template.file_size,
        "mime_type": template.mime_type,
        "url": url,
    }


@login_required
@require_GET
def template_preview(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    """The composer's preview: template ``?template=<id>`` filled for this conversation
    (by the user opening it), and its file, if any."""
    try:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        template = selectors.template_for_conversation(
            user=request.user,
            conversation=conversation,
            template_id=positive_int(request.GET.get("template")) or 0,
        )
    except (Conversation.DoesNotExist, QuickReply.DoesNotExist):
        raise Http404 from None
    text = services.template_render(
        template=template, conversation=conversation, agent=request.user
    )
    url = reverse("conversations:template_file", args=[template.pk])
    return JsonResponse(
        {"id": template.pk, "text": text, "file": template_file_data(template, url)}
    )


@login_required
@require_GET
def quick_replies_moved(request: AuthedRequest) -> HttpResponse:
    """The old address of the page (quick replies became templates)."""
    return redirect("conversations:templates", permanent=True)
