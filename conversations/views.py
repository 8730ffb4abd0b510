"""Server-rendered pages of the inbox, and the small endpoints its page script calls.

Every view reads through the selectors (which apply the access rule: a conversation
someone may not see answers 404, as if it did not exist) and writes through the
services. htmx requests get the fragment they swap in; plain form posts (no
script) get a redirect with a message, so every action also works without htmx.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from conversations import selectors, services
from conversations.files import group_picture_response, media_response
from conversations.models import Contact, Conversation, Message, QuickReply
from conversations.queue_selectors import (
    conversation_events,
    queue_visible_list,
    session_queues,
)
from conversations.selectors import ConversationFilters
from conversations.serializers import conversation_data, message_data
from conversations.templatetags import tags
from vbcrm.errors import error_items, field_error, first_error
from vbcrm.htmx import toast
from vbcrm.params import positive_int
from vbcrm.types import AuthedRequest
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import (
    session_list,
    session_member_get,
    session_members,
    sessions_seen,
)

logger = logging.getLogger(__name__)

LIST_PAGE = 50
THREAD_PAGE = 50
# A thread opened at a message: this many up to it (itself included), this many after.
AROUND = THREAD_PAGE // 2
SYNC_LIMIT = 200
# A reconnecting page asks for changes since the last sync minus this margin: a write
# whose transaction began before the sync's read but committed after it is not missed.
SYNC_MARGIN = timedelta(seconds=10)


# --- helpers ---------------------------------------------------------------------------


def _filters(request: AuthedRequest) -> ConversationFilters:
    scope = request.GET.get("scope", "all")
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    return ConversationFilters(
        scope=scope if scope in {"all", "mine", "unassigned"} else "all",
        status=status if status in Conversation.Status.values else "",
        session_id=positive_int(request.GET.get("number")),
        search=" ".join(request.GET.get("q", "").split())[:100],
        tag_id=positive_int(request.GET.get("tag")),
        kind=kind if kind in {"groups", "direct"} else "",
        queue_id=positive_int(request.GET.get("queue")),
    )


def _list_cursor(request: AuthedRequest) -> tuple | None:
    when = parse_datetime(request.GET.get("before_at", "") or "")
    pk = positive_int(request.GET.get("before_id"))
    return (when, pk) if when and pk else None


def _conversation_or_404(request: AuthedRequest, conversation_id: int) -> Conversation:
    try:
        return selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404 from None


def _htmx_error(message: str, status: int = 400) -> HttpResponse:
    return toast(HttpResponse(status=status), message, "error")


def _json_error(exc_or_message: ValidationError | str, status: int = 400) -> JsonResponse:
    if isinstance(exc_or_message, ValidationError):
        code, text = first_error(exc_or_message)
    else:
        code, text = "invalid", str(exc_or_message)
    return JsonResponse({"error": {"code": code, "message": text}}, status=status)


def _send_error(exc: ValidationError) -> JsonResponse:
    """A refused reply as the composer reads it: 429 with Retry-After past the send rate."""
    code, text = first_error(exc)
    status = 429 if code == "rate_limited" else 400
    response = JsonResponse({"error": {"code": code, "message": text}}, status=status)
    if code == "rate_limited":
        assert exc.params is not None  # send_retry_after's refusal carries retry_after
        response["Retry-After"] = str(exc.params["retry_after"])
    return response


# --- pages -----------------------------------------------------------------------------


def _list_context(
    request: AuthedRequest,
    sessions: list[WhatsAppSession] | None = None,
    conversation: Conversation | None = None,
) -> dict[str, Any]:
    """The list's rows; their tags are read in one query with those of ``conversation``
    (the one open beside the list, for its tag editors)."""
    filters = _filters(request)
    rows = selectors.conversation_list(
        user=request.user,
        filters=filters,
        before=_list_cursor(request),
        limit=LIST_PAGE + 1,
        sessions=None if sessions is None else {s.pk: s for s in sessions},
        tags=False,
    )
    selectors.with_tags(rows if conversation is None else [*rows, conversation])
    return {
        "filters": filters,
        "conversations": rows[:LIST_PAGE],
        "list_has_more": len(rows) > LIST_PAGE,
        "filter_query": request.GET.urlencode(),
    }


def _panel_context(conversation: Conversation) -> dict[str, Any]:
    """What the contact pane shows: a group's members too."""
    contact = conversation.contact
    members = selectors.group_participants(group=contact) if contact.is_group else []
    return {"conversation": conversation, "participants": members}


@dataclass(frozen=True)
class ThreadPage:
    messages: list[Message]
    has_older: bool
    has_newer: bool = False
    hit_id: int | None = None  # the message it opened at (a search result)
    until: Any = None  # the time of the first newer message not shown


def _thread_page(conversation: Conversation, around: int | None) -> ThreadPage:
    """The newest page, or, ``around`` a message of this conversation, the messages
    before and after it (one query more: older and newer pages load as it scrolls)."""
    if around is not None:
        older = selectors.message_list(
            conversation=conversation, before_id=around + 1, limit=AROUND + 1
        )
        if older and older[-1].pk == around:
            newer = selectors.message_list(
                conversation=conversation, after_id=around, limit=AROUND + 1
            )
            has_newer = len(newer) > AROUND
            return ThreadPage(
                messages=older[-AROUND:] + newer[:AROUND],
                has_older=len(older) > AROUND,
                has_newer=has_newer,
                hit_id=around,
                until=newer[AROUND].created_at if has_newer else None,
            )
    page = selectors.message_list(conversation=conversation, limit=THREAD_PAGE + 1)
    return ThreadPage(messages=page[-THREAD_PAGE:], has_older=len(page) > THREAD_PAGE)


def _thread_context(request: AuthedRequest, conversation: Conversation) -> dict[str, Any]:
    """``?message=<id>``: open at that message (highlighted) instead of the newest."""
    page = _thread_page(conversation, positive_int(request.GET.get("message")))
    members = session_members(session=conversation.session)
    return {
        **_panel_context(conversation),
        "messages_page": page.messages,
        "has_older": page.has_older,
        "has_newer": page.has_newer,
        "hit_id": page.hit_id,
        "members": members,
        **thread_queue_context(
            conversation, page.messages, page.has_older, page.until, members=members
        ),
        "quick_replies": [
            {
                "id": t.pk,
                "shortcut": t.shortcut,
                "text": t.text,
                "shared": t.session_id is not None,
                "file_name": t.file_name if t.file else "",
            }
            for t in selectors.template_list_for_conversation(
                user=request.user, conversation=conversation
            )
        ],
        "max_upload": settings.VBCRM_MAX_UPLOAD_BYTES,
    }


def thread_queue_context(
    conversation: Conversation,
    page: list[Message],
    has_older: bool,
    until=None,
    members: list | None = None,
) -> dict[str, Any]:
    """The thread's queue picker, and its system lines (``members``: the number's, when
    the caller has read them: the lines' people come from there)."""
    queues = session_queues(session_id=conversation.session_id)
    return {
        "session_queues": queues,
        "syslines": _syslines(
            conversation,
            page,
            has_older,
            until=until,
            users=members,
            queues=None if members is None else queues,
        ),
    }


def _syslines(
    conversation: Conversation,
    page: list[Message],
    has_older: bool,
    until=None,
    users: list | None = None,
    queues: list | None = None,
) -> dict[int, list]:
    """A page's system lines keyed by the message each follows (the ones older than the
    page's first message come with their older page; ``until``: the time of the message
    after this page, when it is an older one; ``users``, ``queues``: the people and
    queues read already, see ``conversation_events``)."""
    since = page[0].created_at if page and has_older else None
    syslines: dict[int, list] = {}
    events = conversation_events(
        conversation_id=conversation.pk, since=since, until=until, users=users, queues=queues
    )
    for event in events:
        before = [m for m in page if m.created_at <= event.created_at]
        anchor = before[-1] if before else (page[0] if page else None)
        if anchor is not None:
            syslines.setdefault(anchor.pk, []).append(event)
    return syslines


def _inbox_page(request: AuthedRequest, conversation_id: int | None) -> HttpResponse:
    """The inbox, with conversation ``conversation_id`` open (404 if the user may not
    see it)."""
    response = render(request, "conversations/inbox.html", inbox_context(request, conversation_id))
    patch_vary_headers(response, ["HX-Request"])
    return response


def inbox_context(request: AuthedRequest, conversation_id: int | None) -> dict[str, Any]:
    """What the inbox page shows. Every read after the numbers' takes the numbers read
    (not the access rule composed again in each statement)."""
    # The numbers filter shows each number's name and status, never its owner; the
    # list's rows take their number from here too, and the business-hours chips their
    # settings (in the same query).
    user = request.user
    sessions = sessions_seen(user=user, related=("number_settings",))
    conversation = None
    if conversation_id is not None:
        try:
            conversation = selectors.conversation_get(
                user=user, conversation_id=conversation_id, sessions=sessions
            )
        except Conversation.DoesNotExist:
            raise Http404 from None
    tags.usable_from(request, sessions)
    context: dict[str, Any] = {
        "sessions": sessions,
        "unread": selectors.unread_counts(user=user, sessions=sessions),
        "mentions": selectors.mentioned_conversation_ids(user=user, sessions=sessions),
        "since": timezone.now() - SYNC_MARGIN,
        "queues": list(queue_visible_list(user=user, sessions=sessions)),
        **_list_context(request, sessions, conversation),
    }
    if conversation is not None:
        context.update(_thread_context(request, conversation))
    return context


def _list_response(request: AuthedRequest) -> HttpResponse:
    response = render(request, "conversations/_conversation_list.html", _list_context(request))
    patch_vary_headers(response, ["HX-Request"])
    return response


def _wants_list(request: AuthedRequest) -> bool:
    """The filters form asks the current page (``/`` or a conversation's) for the list."""
    return bool(request.htmx) and request.htmx.target == "conversation-list"


@login_required
@require_GET
def inbox(request: AuthedRequest) -> HttpResponse:
    if _wants_list(request):
        return _list_response(request)
    return _inbox_page(request, None)


@login_required
@require_GET
def conversation_detail(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The inbox with one conversation open; to htmx, just the thread and contact panel."""
    if not request.htmx:
        return _inbox_page(request, conversation_id)
    conversation = _conversation_or_404(request, conversation_id)
    if _wants_list(request):
        return _list_response(request)
    response = render(
        request, "conversations/_thread_swap.html", _thread_context(request, conversation)
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def conversation_rows(request: AuthedRequest) -> HttpResponse:
    """The next page of the conversation list (cursor: the last row's time and id)."""
    return render(request, "conversations/_conversation_rows.html", _list_context(request))


@login_required
@require_GET
def thread_header(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    return _header_response(request, conversation)


def _header_response(request: AuthedRequest, conversation: Conversation) -> HttpResponse:
    return render(
        request,
        "conversations/_thread_header.html",
        {
            "conversation": conversation,
            "members": session_members(session=conversation.session),
            "session_queues": session_queues(session_id=conversation.session_id),
        },
    )


@login_required
@require_GET
def older_messages(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """A page of messages before ``?before=<id>`` (scrolling up the thread), or after
    ``?after=<id>`` (scrolling down a thread opened at an older message)."""
    conversation = _conversation_or_404(request, conversation_id)
    before = positive_int(request.GET.get("before"))
    after = positive_int(request.GET.get("after"))
    if after is not None and before is None:
        return _newer_messages(request, conversation, after)
    if before is None:
        return HttpResponseBadRequest("before")
    page = selectors.message_list(
        conversation=conversation, before_id=before, limit=THREAD_PAGE + 1
    )
    return render(
        request,
        "conversations/_messages.html",
        {
            "conversation": conversation,
            "messages_page": page[-THREAD_PAGE:],
            "has_older": len(page) > THREAD_PAGE,
            "syslines": _syslines(
                conversation,
                page[-THREAD_PAGE:],
                len(page) > THREAD_PAGE,
                until=Message.objects.filter(pk=before).values("created_at")[:1],
            ),
        },
    )


def _newer_messages(request: AuthedRequest, conversation: Conversation, after: int) -> HttpResponse:
    page = selectors.message_list(conversation=conversation, after_id=after, limit=THREAD_PAGE + 1)
    shown, has_newer = page[:THREAD_PAGE], len(page) > THREAD_PAGE
    return render(
        request,
        "conversations/_messages.html",
        {
            "conversation": conversation,
            "messages_page": shown,
            "has_older": False,
            "has_newer": has_newer,
            "syslines": _syslines(
                conversation,
                shown,
                True,  # from this page's first message: earlier lines came with the page before
                until=page[THREAD_PAGE].created_at if has_newer else None,
            ),
        },
    )


# --- actions -------------------------------------------------------------------------------


@login_required
@require_POST
def send_message(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    """The composer: text and/or one file. Answers the new (pending) message's fragment so
    the page shows it at once; the same message then arrives over the socket, by id."""
    conversation = _conversation_or_404(request, conversation_id)
    upload = request.FILES.get("file")
    template_id = positive_int(request.POST.get("template"))
    try:
        if template_id is not None and upload is None and not request.POST.get("kind"):
            # A template picked in the composer: its file goes with the (edited) text.
            upload = _template_upload(request, conversation, template_id)
        message = services.message_send(
            user=request.user,
            conversation=conversation,
            # Browsers submit a textarea's new lines as CRLF; WhatsApp's are LF.
            text=request.POST.get("text", "").replace("\r\n", "\n"),
            upload=upload,
            # A recording from the page's microphone button goes as a voice note.
            kind="voice" if request.POST.get("kind") == "voice" else None,
            reply_to_id=positive_int(request.POST.get("reply_to")),
            client_key=request.POST.get("client_key", "")[:64],
            **_message_extra(request),
        )
    except ValidationError as exc:
        return _send_error(exc)
    html = render_to_string(
        "conversations/_message.html",
        {"m": message, "contact_name": conversation.contact.display_name},
        request=request,
    )
    return JsonResponse({"message": {**message_data(message), "html": html}}, status=201)


def _template_upload(
    request: AuthedRequest, conversation: Conversation, template_id: int
) -> UploadedFile | None:
    try:
        template = selectors.template_for_conversation(
            user=request.user, conversation=conversation, template_id=template_id
        )
    except QuickReply.DoesNotExist:
        raise field_error("template", _("This template no longer exists."), "not_found") from None
    return services.template_upload(template=template)


def _float(value: str | None) -> float | None:
    try:
        number = float((value or "").strip().replace(",", "."))
    except ValueError:
        return None
    return number


def _message_extra(request: AuthedRequest) -> dict[str, Any]:
    """The composer's other kinds: ``kind=location`` (latitude, longitude, name, address)
    or ``kind=contact`` (contact_name, contact_phone)."""
    kind = request.POST.get("kind", "")
    if kind == "location":
        lat, lng = _float(request.POST.get("latitude")), _float(request.POST.get("longitude"))
        if lat is None or lng is None:
            raise ValidationError(
                _("Enter the latitude and the longitude as numbers."), code="invalid_coordinate"
            )
        location = services.Location(
            latitude=lat,
            longitude=lng,
            name=request.POST.get("location_name", ""),
            address=request.POST.get("address", ""),
        )
        return {"location": location}
    if kind == "contact":
        contact = services.ContactCard(
            name=request.POST.get("contact_name", ""),
            phone=request.POST.get("contact_phone", ""),
        )
        return {"contact": contact}
    return {}


@login_required
@require_POST
def start_conversation(request: AuthedRequest) -> JsonResponse:
    """The "New conversation" dialog: a number the user works, a phone, the first message.
    Answers where the conversation is, or the refusal to show in the dialog."""
    session_id = positive_int(request.POST.get("session_id"))
    try:
        session = session_list(user=request.user).get(pk=session_id or 0)
    except WhatsAppSession.DoesNotExist:
        return JsonResponse(
            {
                "error": {
                    "code": "not_found",
                    "message": _("Choose a number."),
                    "field": "session_id",
                }
            },
            status=400,
        )
    try:
        conversation, _message = services.conversation_start(
            user=request.user,
            session=session,
            phone=request.POST.get("phone", ""),
            text=request.POST.get("text", "").replace("\r\n", "\n"),
            client_key=request.POST.get("client_key", "")[:64],
            **_message_extra(request),
        )
    except ValidationError as exc:
        field, code, text = error_items(exc)[0]
        status = 429 if code == "rate_limited" else 400
        return JsonResponse(
            {"error": {"code": code, "message": text, "field": field or ""}}, status=status
        )
    return JsonResponse(
        {
            "conversation_id": conversation.pk,
            "url": reverse("conversations:detail", args=[conversation.pk]),
        },
        status=201,
    )


@login_required
@require_POST
def mark_read(request: AuthedRequest, conversation_id: int) -> JsonResponse:
    conversation = _conversation_or_404(request, conversation_id)
    count = services.conversation_mark_read(conversation=conversation, user=request.user)
    return JsonResponse({"count": count})


def _after_action(request: AuthedRequest, conversation: Conversation, message: str) -> HttpResponse:
    if request.htmx:
        return toast(_header_response(request, conversation), message)
    messages.success(request, message)
    return redirect("conversations:detail", conversation.pk)


def _action_failed(request: AuthedRequest, conversation: Conversation, text: str) -> HttpResponse:
    if request.htmx:
        return _htmx_error(text)
    messages.error(request, text)
    return redirect("conversations:detail", conversation.pk)


@login_required
@require_POST
def assign(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """``assignee``: ``me``, a member's id (assign or transfer), or empty to unassign."""
    conversation = _conversation_or_404(request, conversation_id)
    wanted = request.POST.get("assignee", "")
    assignee = None
    if wanted == "me":
        assignee = request.user
    elif wanted:
        try:
            assignee = session_member_get(
                session=conversation.session, user_id=positive_int(wanted) or 0
            )
        except ObjectDoesNotExist:
            return _action_failed(
                request, conversation, _("This user does not work this number's inbox.")
            )
    previous = conversation.assigned_to_id
    try:
        services.conversation_assign(conversation=conversation, assignee=assignee, by=request.user)
    except ValidationError as exc:
        return _action_failed(request, conversation, first_error(exc)[1])
    if assignee is None:
        done = _("The conversation is unassigned.")
    elif assignee.pk == request.user.pk:
        done = _("The conversation is assigned to you.")
    elif previous:
        done = _("Transferred to %(name)s.") % {
            "name": assignee.get_full_name() or assignee.get_username()
        }
    else:
        done = _("Assigned to %(name)s.") % {
            "name": assignee.get_full_name() or assignee.get_username()
        }
    return _after_action(request, conversation, done)


@login_required
@require_POST
def set_status(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    status = request.POST.get("status", "")
    try:
        services.conversation_set_status(conversation=conversation, status=status, by=request.user)
    except ValidationError as exc:
        return _action_failed(request, conversation, first_error(exc)[1])
    done = {
        Conversation.Status.OPEN: _("The conversation is open again."),
        Conversation.Status.PENDING: _("The conversation is marked pending."),
        Conversation.Status.CLOSED: _("The conversation is closed."),
    }[Conversation.Status(status)]
    return _after_action(request, conversation, done)


@login_required
@require_POST
def contact_edit(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The contact panel's form: the name we keep for the contact and the team's notes."""
    conversation = _conversation_or_404(request, conversation_id)
    services.contact_update(
        contact=conversation.contact,
        saved_name=request.POST.get("saved_name", ""),
        notes=request.POST.get("notes", ""),
        no_auto_messages=request.POST.get("no_auto_messages") == "on",
    )
    done = _("Contact saved.")
    if request.htmx:
        context = _panel_context(conversation)
        response = render(request, "conversations/_contact_panel.html", context)
        return toast(response, done)
    messages.success(request, done)
    return redirect("conversations:detail", conversation.pk)


@login_required
@require_POST
def retry(request: AuthedRequest, message_id: int) -> HttpResponse:
    """Put a failed reply back in the outbox; answers its fragment (now pending)."""
    try:
        message = selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404 from None
    try:
        message = services.message_retry(message=message)
    except ValidationError as exc:
        return _json_error(exc)
    html = render_to_string("conversations/_message.html", {"m": message}, request=request)
    return JsonResponse({"message": {**message_data(message), "html": html}})


# --- catching up after a reconnect -------------------------------------------------------------


@login_required
@require_GET
def sync(request: AuthedRequest) -> JsonResponse:
    """What a page that lost its socket missed: conversations changed since ``since``,
    and, for its open conversation, messages after ``after_id`` and changed ones."""
    since = parse_datetime(request.GET.get("since", "") or "")
    if since is None or timezone.is_naive(since):
        return _json_error(_("“since” must be an ISO 8601 time with a time zone."))
    now = timezone.now()
    rows = selectors.conversations_changed_since(user=request.user, since=since, limit=SYNC_LIMIT)
    data: dict[str, Any] = {
        "since": (now - SYNC_MARGIN).isoformat(),
        "conversations": [
            {
                "data": conversation_data(c),
                "html": render_to_string("conversations/_conversation_row.html", {"c": c}),
            }
            for c in rows
        ],
        "unread": selectors.unread_counts(user=request.user),
        "mentions": selectors.mentioned_conversation_ids(user=request.user),
        "messages": [],
        "changed": [],
        "reload": len(rows) >= SYNC_LIMIT,
    }
    conversation_id = positive_int(request.GET.get("conversation"))
    after_id = positive_int(request.GET.get("after_id")) or 0
    if conversation_id:
        try:
            conversation = selectors.conversation_get(
                user=request.user, conversation_id=conversation_id
            )
        except Conversation.DoesNotExist:
            data["conversation_gone"] = True
            return JsonResponse(data)
        name = conversation.contact.display_name
        new = selectors.message_list(
            conversation=conversation, after_id=after_id, limit=SYNC_LIMIT + 1
        )
        changed = selectors.message_list_changed_since(
            conversation=conversation, since=since, up_to_id=after_id, limit=SYNC_LIMIT
        )
        data["reload_thread"] = len(new) > SYNC_LIMIT
        for key, items in (("messages", new[:SYNC_LIMIT]), ("changed", changed)):
            data[key] = [
                {
                    "id": m.pk,
                    "data": message_data(m),
                    "html": render_to_string(
                        "conversations/_message.html", {"m": m, "contact_name": name}
                    ),
                }
                for m in items
            ]
    return JsonResponse(data)


# --- media ------------------------------------------------------------------------------------


@login_required
@require_GET
def media(request: AuthedRequest, message_id: int) -> FileResponse:
    """A message's file, only for users who may see its conversation."""
    try:
        message = selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404 from None
    response = media_response(message, as_attachment=request.GET.get("download") == "1")
    if response is None:
        raise Http404
    return response


@login_required
@require_GET
def group_picture(request: AuthedRequest, contact_id: int) -> FileResponse:
    """A group's picture, only for users who may see its number's conversations."""
    try:
        contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    except Contact.DoesNotExist:
        raise Http404 from None
    response = group_picture_response(contact)
    if response is None:
        raise Http404
    return response
