"""Message templates (quick replies grown up): kept personal or shared by a number's
owner with its agents, with variables filled per conversation and an optional file."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from conversations.models import Conversation, Message, QuickReply
from conversations.services.outbox import MAX_TEXT_LENGTH, message_send
from conversations.services.variables import variables_check, variables_render
from vbcrm.errors import field_error, unstorable
from vbcrm.types import User
from whatsapp.models import WhatsAppSession

logger = logging.getLogger(__name__)


def template_clean(shortcut: str, text: str, has_file: bool) -> tuple[str, str]:
    """The shortcut and text as stored, or a field_error (unknown variables included)."""
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    if not re.fullmatch(r"[a-z0-9_-]{1,50}", shortcut):
        raise field_error(
            "shortcut",
            _("Use 1 to 50 letters, digits, hyphens or underscores (no spaces)."),
            "invalid_shortcut",
        )
    text = (text or "").replace("\r\n", "\n").strip()
    if not text and not has_file:
        raise field_error("text", _("Write the text of the template or attach a file."), "required")
    if len(text) > MAX_TEXT_LENGTH:
        raise field_error(
            "text",
            _("Messages are limited to %(n)d characters.") % {"n": MAX_TEXT_LENGTH},
            "too_long",
        )
    reason = unstorable(text)
    if reason is not None:
        raise field_error("text", _(reason))
    variables_check(text, "text")
    return shortcut, text


def template_file_check(upload: UploadedFile) -> None:
    if upload.size is not None and upload.size > settings.VBCRM_MAX_UPLOAD_BYTES:
        mb = settings.VBCRM_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise field_error("file", _("The file is larger than %(mb)d MB.") % {"mb": mb}, "too_large")
    if unstorable(f"{upload.name or ''}{upload.content_type or ''}") is not None:
        raise field_error("file", _("The file's name or type is not valid text."))


def _set_file(template: QuickReply, upload: UploadedFile) -> None:
    template.file = upload
    template.file_name = (upload.name or "file").rsplit("/", 1)[-1][:255]
    mime = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
    template.mime_type = mime[:127]
    template.file_size = upload.size


def _delete_file_after_commit(name: str) -> None:
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def _duplicate(template: QuickReply) -> Exception:
    if template.session_id is not None:
        message = _("This number already has a template with this shortcut.")
    else:
        message = _("You already have a template with this shortcut.")
    return field_error("shortcut", message, "duplicate")


def quick_reply_create(
    *,
    owner: User,
    shortcut: str,
    text: str,
    session: WhatsAppSession | None = None,
    upload: UploadedFile | None = None,
) -> QuickReply:
    """A template ``owner`` inserts by typing ``/shortcut`` in the composer: theirs alone,
    or, with ``session`` (a number they own), shared with that number's agents.
    Refused whole (nothing stored, no file kept) on any bad field."""
    shortcut, text = template_clean(shortcut, text, upload is not None)
    if session is not None and session.owner_id != owner.pk:
        raise field_error(
            "session", _("Only the number's owner can share templates on it."), "forbidden"
        )
    template = QuickReply(owner=owner, session=session, shortcut=shortcut, text=text)
    if upload is not None:
        template_file_check(upload)
        _set_file(template, upload)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        if template.file:
            default_storage.delete(template.file.name or "")
        raise _duplicate(template) from None
    logger.info(
        "template created id=%s owner=%s session=%s", template.pk, owner.pk, template.session_id
    )
    return template


def quick_reply_update(
    *,
    quick_reply: QuickReply,
    shortcut: str,
    text: str,
    upload: UploadedFile | None = None,
    remove_file: bool = False,
) -> QuickReply:
    """New shortcut and text, and a new file (``upload``) or none (``remove_file``); a
    template stays personal or shared as it was made."""
    template = quick_reply
    keeps_file = bool(template.file) and not remove_file
    shortcut, text = template_clean(shortcut, text, upload is not None or keeps_file)
    if upload is not None:
        template_file_check(upload)
    old_file = template.file.name if template.file else ""
    template.shortcut, template.text = shortcut, text
    if upload is not None:
        _set_file(template, upload)
    elif remove_file:
        template.file, template.file_name, template.mime_type, template.file_size = "", "", "", None
    try:
        with transaction.atomic():
            template.save()
            if old_file and (upload is not None or remove_file):
                _delete_file_after_commit(old_file)
    except IntegrityError:
        if upload is not None and template.file and template.file.name != old_file:
            default_storage.delete(template.file.name or "")
        template.refresh_from_db()
        raise _duplicate(template) from None
    return template


def quick_reply_delete(*, quick_reply: QuickReply) -> None:
    with transaction.atomic():
        if quick_reply.file:
            _delete_file_after_commit(quick_reply.file.name or "")
        quick_reply.delete()


def template_render(*, template: QuickReply, conversation: Conversation, agent: User) -> str:
    """The template's text as ``agent`` would send it in ``conversation`` (the preview)."""
    return variables_render(template.text, conversation=conversation, agent=agent)


def template_upload(*, template: QuickReply) -> UploadedFile | None:
    """The template's file as an upload to send (the message keeps its own copy, so
    changing the template later changes no message), or None when it has none."""
    if not template.file:
        return None
    try:
        with template.file.open("rb") as f:
            content = f.read()
    except OSError:
        logger.warning("template file missing id=%s", template.pk)
        raise field_error(
            "file", _("The template's file is missing: attach it again on the templates page.")
        ) from None
    return SimpleUploadedFile(
        template.file_name or "file", content, template.mime_type or "application/octet-stream"
    )


def template_send(
    *,
    user: User,
    conversation: Conversation,
    template: QuickReply,
    text: str,
    client_key: str = "",
    reply_to_id: int | None = None,
) -> Message:
    """Send ``text`` (the template as the agent left it after the preview) with the
    template's file, if any, through the one send path (its rate limit and rules)."""
    return message_send(
        user=user,
        conversation=conversation,
        text=text,
        upload=template_upload(template=template),
        reply_to_id=reply_to_id,
        client_key=client_key,
    )
