"""The inbox's team tools: private notes in the thread, mentions read, and tags on the
conversation (thread header) and on its contact (contact pane).

Same rules as conversations.views: reads through the selectors (a conversation of a
number the user does not work answers 404), writes through the services.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from conversations import selectors, services
from conversations.models import Conversation
from conversations.serializers import message_data
from conversations.templatetags.tags import tag_editor_html
from vbcrm.errors import first_error
from vbcrm.htmx import toast
from vbcrm.types import AuthedRequest

logger = logging.getLogger(__name__)

TARGETS = ("conversation", "contact")


def _conversation_or_404(request: AuthedRequest, conversation_id: int) -> Conversation:
    try:
        return selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404 from None


@login_required
@require_POST
def add_note(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    """The composer in note mode: answers the note's fragment, as a send does."""
    conversation = _conversation_or_404(request, conversation_id)
    try:
        note = services.note_add(
            user=request.user,
            conversation=conversation,
            text=request.POST.get("text", "").replace("\r\n", "\n"),
            client_key=request.POST.get("client_key", "")[:64],
        )
    except ValidationError as exc:
        code, text = first_error(exc)
        return JsonResponse({"error": {"code": code, "message": text}}, status=400)
    html = render_to_string("conversations/_message.html", {"m": note}, request=request)
    return JsonResponse({"message": {**message_data(note), "html": html}}, status=201)


@login_required
@require_POST
def mentions_read(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    conversation = _conversation_or_404(request, conversation_id)
    count = services.mentions_mark_read(user=request.user, conversation=conversation)
    return JsonResponse({"count": count})


def _target(request: AuthedRequest) -> str:
    target = request.POST.get("target") or request.GET.get("target") or ""
    return target if target in TARGETS else "conversation"


def _current_ids(conversation: Conversation, target: str) -> list[int]:
    owner = conversation.contact if target == "contact" else conversation
    return list(owner.tags.values_list("pk", flat=True))


def _apply(request: AuthedRequest, conversation: Conversation, target: str) -> str:
    """Add or remove one tag; answers what to tell the user. ValidationError if refused."""
    ids = _current_ids(conversation, target)
    if request.POST.get("action") == "remove":
        try:
            tag_id = int(request.POST.get("tag", ""))
        except ValueError:
            raise ValidationError(_("No such tag for this number."), code="not_found") from None
        ids = [i for i in ids if i != tag_id]
        done = _("Tag removed.")
    else:
        tag = services.tag_create(
            session=conversation.session,
            name=request.POST.get("name", ""),
            color=request.POST.get("color", ""),
        )
        ids = [*ids, tag.pk]
        done = _("Tag added.")
    if target == "contact":
        services.contact_tags_set(contact=conversation.contact, tag_ids=ids)
    else:
        services.conversation_tags_set(conversation=conversation, tag_ids=ids)
    return done


@login_required
def tags(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """GET: the tag editor of the conversation or of its contact (``?target=``), for a
    page that heard they changed. POST: add a tag (by name: the owner's tag of that name,
    made if new, in ``color``) or remove one (``tag``: its id); answers the editor."""
    conversation = _conversation_or_404(request, conversation_id)
    target = _target(request)
    if request.method == "GET":
        return HttpResponse(tag_editor_html(request, conversation, target))
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    try:
        done, level = _apply(request, conversation, target), "success"
    except ValidationError as exc:
        done, level = first_error(exc)[1], "error"
    if request.htmx:
        response = HttpResponse(tag_editor_html(request, conversation, target))
        return toast(response, done, level)
    (messages.success if level == "success" else messages.error)(request, done)
    return redirect("conversations:detail", conversation.pk)
