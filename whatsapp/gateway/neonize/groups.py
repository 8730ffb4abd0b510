"""Group info for :class:`~whatsapp.gateway.neonize.session.NeonizeSession`.

:func:`read` runs under the session's shared FFI lock (two Go calls: the group's
info, then its picture's); :func:`with_picture` runs after it, outside the lock,
because fetching the picture is plain HTTPS and may take a while.

The picture: WhatsApp answers with a signed, expiring URL on its CDN, not the bytes.
Handing that URL to the page would make every agent's browser fetch from WhatsApp
(outside the page's ``img-src 'self'``, and telling WhatsApp who looks at the group),
and it stops working after a while. So the child fetches the file once, into the
media folder, and the inbox serves it to the people who may see the conversation.
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from whatsapp.gateway import base
from whatsapp.gateway.neonize._lib import (
    JID,
    GetProfilePictureParams,
    NeonizeError,
    NewClient,
)
from whatsapp.gateway.neonize.ffi import _gateway_error
from whatsapp.gateway.neonize.mapping import map_group_info

logger = logging.getLogger(__name__)

PICTURE_MAX_BYTES = 5 * 1024 * 1024
PICTURE_TIMEOUT = 30.0
# Where WhatsApp serves profile pictures from; any other host in an answer is refused.
PICTURE_HOST_SUFFIX = ".whatsapp.net"
# What WhatsApp says when there is no picture to see (none set, or hidden from us).
_NO_PICTURE = ("not set", "item-not-found", "404", "401", "not-authorized", "unauthorized")


def read(client: NewClient, jid: JID, cmd: base.GetGroupInfo) -> tuple[base.GroupInfo, str]:
    """The group's info with its picture id, and the URL to fetch the picture from
    ("" when there is none, or it is the known one)."""
    try:
        info = map_group_info(client.get_group_info(jid))
    except NeonizeError as exc:
        raise _gateway_error("group info", exc) from exc
    picture_id, url = cmd.known_picture_id, ""
    if cmd.picture_dest:
        picture_id, url = _picture(client, jid, cmd.known_picture_id)
    return base.GroupInfo(
        jid=info.jid or cmd.jid,
        subject=info.subject,
        participants=info.participants,
        picture_id=picture_id,
    ), url


def _picture(client: NewClient, jid: JID, known_id: str) -> tuple[str, str]:
    params = GetProfilePictureParams(Preview=False, ExistingID=known_id, IsCommunity=False)
    try:
        picture = client.get_profile_picture(jid, params)
    except NeonizeError as exc:
        if any(word in str(exc).lower() for word in _NO_PICTURE):
            return "", ""
        # Trouble reaching it is not a removed picture: keep the one we have.
        logger.warning("group picture lookup failed: %s", type(exc).__name__)
        return known_id, ""
    if not picture.URL:  # whatsmeow answers nothing when ExistingID is still current
        return known_id, ""
    return picture.ID or known_id, picture.URL


def with_picture(info: base.GroupInfo, url: str, dest: str) -> base.GroupInfo:
    """``info`` with ``picture_path`` set once the picture at ``url`` is in ``dest``;
    as it is when there is nothing to fetch or the fetch failed (tried again on the
    next change or restart)."""
    if not url or not dest:
        return info
    try:
        download_picture(url, Path(dest))
    except (OSError, ValueError, base.GatewayError) as exc:
        logger.warning("group picture not fetched: %s", exc)
        return base.GroupInfo(jid=info.jid, subject=info.subject, participants=info.participants)
    return base.GroupInfo(
        jid=info.jid,
        subject=info.subject,
        participants=info.participants,
        picture_id=info.picture_id,
        picture_path=dest,
    )


def download_picture(url: str, dest: Path) -> int:
    """Fetch a profile picture from WhatsApp's CDN into ``dest``; its size.

    Only ``https`` URLs on WhatsApp's own hosts are followed (the URL comes from the
    network), and only up to ``PICTURE_MAX_BYTES``.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host.endswith(PICTURE_HOST_SUFFIX):
        raise ValueError(f"refusing a picture URL on {host or 'no host'}")
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=PICTURE_TIMEOUT) as response:  # noqa: S310
        data = response.read(PICTURE_MAX_BYTES + 1)
    if not data or len(data) > PICTURE_MAX_BYTES:
        raise ValueError("empty or oversized picture")
    return base.write_file(dest, data)
