"""The REST API's shapes for conversations and messages: what goes in and comes out,
and the request bodies' schemas as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

from conversations.models import Conversation, Message
from vbcrm.api_base import SafeStr

MAX_ID = 2**53  # ids beyond are refused as invalid rather than overflow SQLite's integers

# The models' choices as inline enums: their TextChoices classes share names ("Status")
# and OpenAPI components are keyed by name, so as classes they would overwrite each other.
# Built at run time, so the type checker sees them as the strings they hold.
if TYPE_CHECKING:
    ConversationStatus = str
    MessageDirection = str
    MessageKind = str
    MessageStatus = str
    MediaStatus = str
else:
    ConversationStatus = Literal[tuple(Conversation.Status.values)]
    MessageDirection = Literal[tuple(Message.Direction.values)]
    MessageKind = Literal[tuple(Message.Kind.values)]
    MessageStatus = Literal[tuple(Message.Status.values)]
    MediaStatus = Literal[tuple(Message.MediaStatus.values)]


# --- Shapes ----------------------------------------------------------------------------


class ContactOut(Schema):
    id: int
    name: str
    phone: str
    jid: str
    is_group: bool


class ConversationOut(Schema):
    id: int
    session_id: int = Field(description="The number (WhatsApp session) it belongs to.")
    status: ConversationStatus
    assigned_to_id: int | None
    queue_id: int | None = Field(default=None, description="The queue it is in, if any.")
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str
    updated_at: datetime | None
    contact: ContactOut

    @staticmethod
    def resolve_last_message_preview(obj) -> str:
        return obj["last_message_preview"] if isinstance(obj, dict) else obj.preview_display


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class MessageOut(Schema):
    id: int
    conversation_id: int
    wa_id: str
    direction: MessageDirection = Field(
        description="CLIENTE: from the customer; ATENDENTE: ours; NOTA: the team's private "
        "note (never sent to WhatsApp)."
    )
    kind: MessageKind
    body: str
    status: MessageStatus
    automatic: bool = Field(
        default=False, description="Sent by the number itself, not by an agent."
    )
    auto_reason: Literal["", "menu", "greeting", "away", "keyword", "close"] = Field(
        default="",
        description="Why an automatic message went out: the menu bot, the greeting, the "
        "away message, a keyword rule, or the idle close.",
    )
    error: str
    media_status: MediaStatus
    media_url: str | None = Field(
        description="Where to download the file (same authentication as the API)."
    )
    media_link: str = Field(
        default="",
        description="Imported messages only: the file's address in the previous system, "
        "when the file itself was not copied here.",
    )
    mime_type: str
    file_name: str
    file_size: int | None
    latitude: float | None
    longitude: float | None
    location_name: str
    sender_name: str
    sent_by_id: int | None
    reply_to_id: int | None
    wa_timestamp: datetime | None
    created_at: datetime | None
    read_at: datetime | None


class MessagePage(Schema):
    items: list[MessageOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as ?before= for older messages; null when there are none."
    )


class ReadOut(Schema):
    conversation: ConversationOut
    marked: int = Field(description="How many messages were newly marked read.")


class AssignIn(Schema):
    user_id: Annotated[int, Field(ge=1, le=MAX_ID)] | Literal["me"] | None = Field(
        description='The agent to assign (the number\'s owner or one of its agents), "me", '
        "or null to unassign."
    )


class LocationIn(BaseModel):
    latitude: float = Field(ge=-90, le=90, description="Degrees, -90 to 90.")
    longitude: float = Field(ge=-180, le=180, description="Degrees, -180 to 180.")
    name: SafeStr = Field("", max_length=255, description="The place's name.")
    address: SafeStr = Field("", max_length=1000, description="Its address.")


class ContactCardIn(BaseModel):
    name: SafeStr = Field("", max_length=128, description="The contact's name (with phone).")
    phone: SafeStr = Field("", max_length=40, description="Their phone, with country code.")
    vcard: SafeStr = Field("", max_length=10_000, description="Or a whole vCard 3.0 text.")


class SendIn(BaseModel):
    """A message. JSON for text, a location or a contact card; multipart/form-data with
    ``file`` for a file and caption."""

    model_config = ConfigDict(extra="ignore")

    text: SafeStr = Field("", description="The text, or the file's caption (4096 characters).")
    kind: SafeStr | None = Field(
        None,
        description="With a file: image, video, audio, voice, document or sticker "
        "(default: from the file's type; a .webp goes as a sticker). An unknown kind "
        "answers 422.",
    )
    reply_to_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="A message of this conversation to quote."
    )
    location: LocationIn | None = Field(None, description="Send a location (JSON only).")
    contact: ContactCardIn | None = Field(
        None, description="Send a contact card: name and phone, or a vCard (JSON only)."
    )


class StartIn(SendIn):
    """Write first to a phone: the number to write from, the phone, and the message."""

    session_id: int = Field(ge=1, le=MAX_ID, description="The number to write from.")
    phone: SafeStr = Field(
        max_length=40,
        description="The customer's phone with country code (+55 11 98888-0001); without "
        "one, VBCRM_DEFAULT_COUNTRY_CODE is assumed when set.",
    )


class StartOut(Schema):
    conversation: ConversationOut
    message: MessageOut


def _multipart(schema: dict) -> dict:
    properties = {k: v for k, v in schema["properties"].items() if k not in ("location", "contact")}
    file = {"type": "string", "format": "binary", "description": "The file to send."}
    return {"type": "object", "properties": {**properties, "file": file}}


def _inline(schema: dict) -> dict:
    """A model's JSON schema with its nested models written in place (no ``$defs``)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_SEND_BODY_SCHEMA = _inline(SendIn.model_json_schema())
_SEND_MULTIPART_SCHEMA = _multipart(_SEND_BODY_SCHEMA)
_START_BODY_SCHEMA = _inline(StartIn.model_json_schema())
_START_MULTIPART_SCHEMA = _multipart(_START_BODY_SCHEMA)
