"""Outgoing messages as WhatsApp protobufs: the mirror of :mod:`.mapping`.

Pure functions of a command, except :func:`build_media`, whose neonize builders
upload the file (so they need the live client, called under the FFI lock).

Things neonize 0.5.2 cannot do, and what this module does instead:

* Replies: neonize builds a quote only from the full original message event,
  so a text reply's quote is built here from what the command carries (id,
  sender and text of the quoted message); other replies name the quoted id only.
* Message ids: ``send_message`` cannot take a caller-chosen id, so the id
  WhatsApp knows the message by is the one in :class:`base.SendResult`, not
  ``cmd.message_id``.
"""

from __future__ import annotations

import os

from whatsapp.gateway import base
from whatsapp.gateway.neonize._lib import (
    JID,
    ContactMessage,
    ContextInfo,
    ExtendedTextMessage,
    LocationMessage,
    Message,
    NewClient,
)
from whatsapp.gateway.neonize.mapping import parse_jid


def command_jid(what: str, value: str) -> JID:
    """A command's JID string as neonize's JID; a bad one fails the command."""
    try:
        return parse_jid(value)
    except ValueError as exc:
        raise base.GatewayError(f"{what}: bad JID: {exc}") from exc


def build_text(cmd: base.SendText) -> Message:
    # Built by hand rather than passing a str to send_message: that would scan the
    # text for @mentions and query group info over the network.
    if not cmd.quoted_id:
        return Message(conversation=cmd.text)
    quote = ContextInfo(stanzaID=cmd.quoted_id, quotedMessage=Message(conversation=cmd.quoted_text))
    if cmd.quoted_sender:
        quote.participant = cmd.quoted_sender
    return Message(extendedTextMessage=ExtendedTextMessage(text=cmd.text, contextInfo=quote))


def build_location(cmd: base.SendLocation) -> Message:
    part = LocationMessage(degreesLatitude=cmd.latitude, degreesLongitude=cmd.longitude)
    if cmd.name:
        part.name = cmd.name
    if cmd.address:
        part.address = cmd.address
    if cmd.quoted_id:
        part.contextInfo.CopyFrom(ContextInfo(stanzaID=cmd.quoted_id))
    return Message(locationMessage=part)


def build_contact(cmd: base.SendContact) -> Message:
    part = ContactMessage(displayName=cmd.display_name, vcard=cmd.vcard)
    if cmd.quoted_id:
        part.contextInfo.CopyFrom(ContextInfo(stanzaID=cmd.quoted_id))
    return Message(contactMessage=part)


def build_media(client: NewClient, cmd: base.SendMedia, data: bytes) -> Message:
    """Upload ``data`` and build its message (``data`` always bytes: neonize's builders
    treat a str as a path *or a URL*)."""
    caption = cmd.caption or None
    kind = cmd.kind
    if kind == base.MessageKind.IMAGE:
        return client.build_image_message(data, caption=caption)
    if kind == base.MessageKind.VIDEO:
        return client.build_video_message(data, caption=caption)
    if kind in (base.MessageKind.AUDIO, base.MessageKind.VOICE):
        ptt = kind == base.MessageKind.VOICE
        message = client.build_audio_message(data, ptt=ptt)
        # WhatsApp only plays a voice note whose mimetype names the codec;
        # libmagic just says "audio/ogg".
        if ptt and message.audioMessage.mimetype == "audio/ogg":
            message.audioMessage.mimetype = "audio/ogg; codecs=opus"
        return message
    if kind == base.MessageKind.DOCUMENT:
        filename = cmd.filename or os.path.basename(cmd.path)
        return client.build_document_message(
            data,
            caption=caption,
            title=filename,
            filename=filename,
            mimetype=cmd.mimetype or None,
        )
    # neonize fits the image to WhatsApp's 512 px sticker (a .webp too).
    return client.build_sticker_message(data)


def phone_checks(phones: tuple[str, ...], responses: object) -> tuple[base.PhoneCheck, ...]:
    """neonize's ``is_on_whatsapp`` answers (``Query``, ``IsIn``, ``JID``), one per phone
    asked, in the order asked; a phone WhatsApp did not answer for is not on it."""
    by_query: dict[str, tuple[bool, str]] = {}
    for r in responses:  # type: ignore[attr-defined]
        digits = "".join(ch for ch in r.Query if ch.isdigit())
        jid = f"{r.JID.User}@{r.JID.Server}" if r.IsIn and r.JID.User else ""
        by_query[digits] = (bool(r.IsIn), jid)
    out = []
    for phone in phones:
        on, jid = by_query.get(phone, (False, ""))
        out.append(base.PhoneCheck(phone=phone, on_whatsapp=on, jid=jid))
    return tuple(out)
