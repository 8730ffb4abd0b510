"""The quick replies page: each user's canned answers (the composer offers them on "/")."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from conversations import selectors, services
from conversations.models import QuickReply
from vbcrm.errors import first_error
from vbcrm.types import AuthedRequest


@login_required
@require_http_methods(["GET", "POST"])
def quick_replies(request: AuthedRequest) -> HttpResponse:
    """The user's canned answers: list, add (POST) and, from each row, edit or delete."""
    form_errors: dict[str, str] = {}
    values = {"shortcut": "", "text": ""}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in values}
        try:
            reply = services.quick_reply_create(owner=request.user, **values)
        except ValidationError as exc:
            form_errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
        else:
            messages.success(request, _("Quick reply /%(s)s saved.") % {"s": reply.shortcut})
            return redirect("conversations:quick_replies")
    return render(
        request,
        "conversations/quick_replies.html",
        {
            "replies": selectors.quick_reply_list(user=request.user),
            "form_errors": form_errors,
            "values": values,
        },
        status=400 if form_errors else 200,
    )


def _quick_reply_or_404(request: AuthedRequest, quick_reply_id: int) -> QuickReply:
    try:
        return selectors.quick_reply_get(user=request.user, quick_reply_id=quick_reply_id)
    except QuickReply.DoesNotExist:
        raise Http404 from None


@login_required
@require_POST
def quick_reply_edit(request: AuthedRequest, quick_reply_id: int) -> HttpResponse:
    reply = _quick_reply_or_404(request, quick_reply_id)
    try:
        services.quick_reply_update(
            quick_reply=reply,
            shortcut=request.POST.get("shortcut", ""),
            text=request.POST.get("text", ""),
        )
    except ValidationError as exc:
        messages.error(request, first_error(exc)[1])
    else:
        messages.success(request, _("Quick reply /%(s)s saved.") % {"s": reply.shortcut})
    return redirect("conversations:quick_replies")


@login_required
@require_POST
def quick_reply_delete(request: AuthedRequest, quick_reply_id: int) -> HttpResponse:
    reply = _quick_reply_or_404(request, quick_reply_id)
    services.quick_reply_delete(quick_reply=reply)
    messages.success(request, _("Quick reply /%(s)s deleted.") % {"s": reply.shortcut})
    return redirect("conversations:quick_replies")
