"""Server-rendered pages of the inbox."""

from __future__ import annotations

import mimetypes

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from conversations import selectors
from conversations.models import Message
from whatsapp.selectors import session_list


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    sessions = list(session_list(user=request.user))
    conversations = selectors.conversation_list(user=request.user)
    return render(
        request,
        "conversations/inbox.html",
        {"sessions": sessions, "conversations": conversations},
    )


@login_required
@require_GET
def media(request: HttpRequest, message_id: int) -> FileResponse:
    """A message's file, only for users who may see its conversation."""
    try:
        message = selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404 from None
    if not message.media or message.media_status != Message.MediaStatus.READY:
        raise Http404
    content_type = message.mime_type or mimetypes.guess_type(message.media.name)[0]
    response = FileResponse(
        message.media.open("rb"),
        content_type=content_type or "application/octet-stream",
        as_attachment=request.GET.get("download") == "1",
        filename=message.file_name or None,
    )
    # Files come from strangers: never let the browser sniff them into HTML.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
