"""Where a received file is stored: its name under MEDIA_ROOT, from its file name or type."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.utils import timezone

from conversations.models import Message

# The extensions people expect for WhatsApp's usual types: mimetypes' own guess is odd
# for some (.oga for audio/ogg) and depends on the machine's tables.
MEDIA_EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
}


def _safe_extension(ext: str) -> bool:
    return 2 <= len(ext) <= 8 and ext[0] == "." and ext[1:].isascii() and ext[1:].isalnum()


def received_media_name(message: Message) -> str:
    """Where a received file goes, relative to MEDIA_ROOT: ``YYYY/MM/in-<id><ext>``, the
    extension from its file name, else from its type (parameters such as
    ``; codecs=opus`` aside), else ``.bin``."""
    ext = Path(message.file_name).suffix.lower() if message.file_name else ""
    if not _safe_extension(ext):
        mime = (message.mime_type or "").split(";", 1)[0].strip().lower()
        ext = MEDIA_EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ""
        if not _safe_extension(ext):
            ext = ".bin"
    now = timezone.now()
    return f"{now:%Y/%m}/in-{message.pk}{ext}"
