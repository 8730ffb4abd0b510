"""Serving a message's file (the same way to pages and to the API), a template's file and a
group's picture."""

from __future__ import annotations

import mimetypes

from django.http import FileResponse

from conversations.models import Contact, Message, QuickReply


def _guarded(response: FileResponse) -> FileResponse:
    # Files come from strangers: never let a browser sniff them into HTML or run them.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def group_picture_response(contact: Contact) -> FileResponse | None:
    """A group's picture (``contact`` already access-checked), or None when it has none.
    WhatsApp's profile pictures are JPEG."""
    if not contact.group_picture:
        return None
    return _guarded(FileResponse(contact.group_picture.open("rb"), content_type="image/jpeg"))


def media_response(message: Message, *, as_attachment: bool) -> FileResponse | None:
    """The file of ``message`` (already access-checked), or None when it has none yet."""
    if not message.media or message.media_status != Message.MediaStatus.READY:
        return None
    content_type = message.mime_type or mimetypes.guess_type(message.media.name or "")[0]
    response = FileResponse(
        message.media.open("rb"),
        content_type=content_type or "application/octet-stream",
        as_attachment=as_attachment,
        filename=message.file_name,  # "": Django names it after the stored file
    )
    return _guarded(response)


def template_file_response(template: QuickReply, *, as_attachment: bool) -> FileResponse | None:
    """The file of ``template`` (already access-checked), or None when it has none."""
    if not template.file:
        return None
    response = FileResponse(
        template.file.open("rb"),
        content_type=template.mime_type or "application/octet-stream",
        as_attachment=as_attachment,
        filename=template.file_name,
    )
    return _guarded(response)
