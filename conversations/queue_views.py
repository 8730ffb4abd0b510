"""The queues page (an owner sets up each number's queues and menu bot; an agent sees the
queues they are in), the header's available / away switch, and moving a conversation
to another queue. Plain form posts answered with a redirect and a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from conversations import queue_selectors, selectors, services
from conversations.models import Conversation, Queue
from conversations.services import QueueFields
from conversations.templatetags.layout import top_bar_urls
from conversations.views import _header_response
from vbcrm.errors import first_error
from vbcrm.htmx import toast
from vbcrm.types import AuthedRequest
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_members, session_owned_list


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _fields(request: AuthedRequest) -> QueueFields:
    post = request.POST
    return QueueFields(
        name=post.get("name", ""),
        color=post.get("color", "#075e54"),
        position=_int(post.get("position"), -1),
        parent_id=_int(post.get("parent_id")) or None,
        assignment=post.get("assignment", Queue.Assignment.OFF),
        agent_ids=tuple(_int(v) for v in post.getlist("agent_ids") if _int(v) > 0),
    )


@login_required
@require_GET
def queues(request: AuthedRequest) -> HttpResponse:
    owned = list(session_owned_list(user=request.user).order_by("name"))
    all_queues = list(queue_selectors.queue_manage_list(user=request.user))
    numbers = [
        {
            "session": s,
            "queues": [q for q in all_queues if q.session_id == s.pk],
            "top": [q for q in all_queues if q.session_id == s.pk and q.parent_id is None],
            "settings": services.queue_settings_get(session=s),
            "members": session_members(session=s),
        }
        for s in owned
    ]
    visible = queue_selectors.queue_visible_list(user=request.user)
    mine = [q for q in visible if q.session.owner_id != request.user.pk]
    return render(
        request,
        "conversations/queues.html",
        {
            "numbers": numbers,
            "mine": mine,
            "assignment_choices": Queue.Assignment.choices,
        },
    )


def _owned_session_or_404(request: AuthedRequest, session_id: int) -> WhatsAppSession:
    try:
        return session_owned_list(user=request.user).get(pk=session_id)
    except WhatsAppSession.DoesNotExist:
        raise Http404 from None


def _managed_queue_or_404(request: AuthedRequest, queue_id: int) -> Queue:
    try:
        return queue_selectors.queue_manage_get(user=request.user, queue_id=queue_id)
    except Queue.DoesNotExist:
        raise Http404 from None


def _done(request: AuthedRequest, exc: ValidationError | None, message: str) -> HttpResponse:
    if exc is not None:
        messages.error(request, first_error(exc)[1])
    else:
        messages.success(request, message)
    return redirect("conversations:queues")


@login_required
@require_POST
def queue_add(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned_session_or_404(request, session_id)
    try:
        queue = services.queue_create(session=session, fields=_fields(request))
    except ValidationError as exc:
        return _done(request, exc, "")
    return _done(request, None, _("Queue “%(name)s” created.") % {"name": queue.name})


@login_required
@require_POST
def queue_edit(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = _managed_queue_or_404(request, queue_id)
    try:
        services.queue_update(queue=queue, fields=_fields(request))
    except ValidationError as exc:
        return _done(request, exc, "")
    return _done(request, None, _("Queue “%(name)s” saved.") % {"name": queue.name})


@login_required
@require_POST
def queue_remove(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = _managed_queue_or_404(request, queue_id)
    services.queue_delete(queue=queue)
    return _done(request, None, _("Queue “%(name)s” deleted.") % {"name": queue.name})


@login_required
@require_POST
def queue_settings(request: AuthedRequest, session_id: int) -> HttpResponse:
    session = _owned_session_or_404(request, session_id)
    post = request.POST
    try:
        services.queue_settings_update(
            session=session,
            menu_enabled=post.get("menu_enabled") == "on",
            menu_greeting=post.get("menu_greeting", ""),
            menu_max_attempts=_int(post.get("menu_max_attempts"), -1),
            default_queue_id=_int(post.get("default_queue_id")) or None,
            menu_on_reopen=post.get("menu_on_reopen") == "on",
            agent_cap=_int(post.get("agent_cap"), -1),
        )
    except ValidationError as exc:
        return _done(request, exc, "")
    return _done(request, None, _("Menu and assignment of %(name)s saved.") % {"name": session})


@login_required
@require_POST
def availability(request: AuthedRequest) -> HttpResponse:
    """The header's switch: available for automatic assignment, or away."""
    available = request.POST.get("available") == "1"
    presence = services.presence_set(user=request.user, available=available)
    if request.htmx:
        return render(
            request, "layout/availability.html", {"presence": presence, "urls": top_bar_urls()}
        )
    messages.success(request, _("You are available.") if presence.available else _("You are away."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "/"
    return redirect(back)


@login_required
@require_POST
def conversation_queue(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """Move a conversation to another queue of its number (``queue_id`` empty: none)."""
    try:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise Http404 from None
    queue = None
    wanted = _int(request.POST.get("queue_id"))
    if wanted:
        try:
            queue = queue_selectors.queue_for_conversation(
                user=request.user, session_id=conversation.session_id, queue_id=wanted
            )
        except Queue.DoesNotExist:
            raise Http404 from None
    services.conversation_move(conversation=conversation, queue=queue, by=request.user)
    done = _("Moved to %(name)s.") % {"name": queue.name} if queue else _("Taken out of its queue.")
    if request.htmx:
        return toast(_header_response(request, conversation), done)
    messages.success(request, done)
    return redirect("conversations:detail", conversation.pk)
