from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations import vcard
from whatsapp.models import WhatsAppSession


class BytesField(models.BinaryField):
    """A BinaryField that lets PostgreSQL's ``bulk_create`` insert with UNNEST.

    Django takes that much cheaper form only when no field has ``get_placeholder``,
    and BinaryField has one just for MySQL's ``_binary %s``: PostgreSQL and SQLite,
    the databases this project runs on, use a plain ``%s`` for it anyway. Same
    column, so migrations see a plain BinaryField (no table rebuild on SQLite).
    """

    @property
    def get_placeholder(self):
        raise AttributeError("get_placeholder")

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.BinaryField", args, kwargs


class Contact(models.Model):
    """Someone (or a group) a number talks to. JID and LID are two addresses of one contact."""

    session = models.ForeignKey(WhatsAppSession, on_delete=models.CASCADE, related_name="contacts")
    jid = models.CharField(_("WhatsApp JID"), max_length=128)
    lid = models.CharField(_("LID"), max_length=128, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=32, blank=True, default="", db_index=True)
    push_name = models.CharField(_("WhatsApp name"), max_length=128, blank=True, default="")
    saved_name = models.CharField(_("name"), max_length=128, blank=True, default="")
    notes = models.TextField(_("notes"), blank=True, default="")
    is_group = models.BooleanField(_("group"), default=False)
    # A group's own name and picture, as WhatsApp last told them (saved_name stays the
    # agents' name for it). group_info_at: when its info was last read; None = never.
    group_subject = models.CharField(_("group subject"), max_length=128, blank=True, default="")
    group_picture = models.FileField(
        _("group picture"), upload_to="groups/", blank=True, max_length=255
    )
    group_picture_id = models.CharField(max_length=64, blank=True, default="")
    group_info_at = models.DateTimeField(_("group info read"), null=True, blank=True)
    no_auto_messages = models.BooleanField(_("no automatic messages"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_contacts"
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["session", "jid"], name="uniq_contact_jid"),
            models.UniqueConstraint(
                fields=["session", "lid"], condition=~Q(lid=""), name="uniq_contact_lid"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return display_name(
            self.saved_name, self.group_subject, self.push_name, self.phone, self.jid
        )


def display_name(saved_name: str, group_subject: str, push_name: str, phone: str, jid: str) -> str:
    """The name a contact shows: the agents' name for it, a group's subject, the name
    it gave WhatsApp, its phone, else its address."""
    return saved_name or group_subject or push_name or phone or jid.split("@", 1)[0]


class GroupParticipant(models.Model):
    """A member of a group (a Contact with ``is_group``), as WhatsApp last listed them.

    ``jid`` is how the group addresses them (a phone JID or a LID), the key their
    messages' ``sender_jid`` carries; ``name`` is the one WhatsApp gave, if any.
    """

    group = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="participants")
    jid = models.CharField(_("WhatsApp JID"), max_length=128)
    lid = models.CharField(_("LID"), max_length=128, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=32, blank=True, default="")
    name = models.CharField(_("name"), max_length=128, blank=True, default="")
    is_admin = models.BooleanField(_("admin"), default=False)

    class Meta:
        db_table = "whatsapp_group_participants"
        verbose_name = _("group participant")
        verbose_name_plural = _("group participants")
        constraints = [
            models.UniqueConstraint(fields=["group", "jid"], name="uniq_group_participant"),
        ]

    def __str__(self) -> str:
        return self.name or (f"+{self.phone}" if self.phone else self.jid)


class Conversation(models.Model):
    """A ticket ("atendimento"): one per (number, contact or group)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        CLOSED = "closed", _("Closed")

    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.CASCADE, related_name="conversations"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned agent"),
    )
    unread_count = models.PositiveIntegerField(_("unread"), default=0)
    # Routing (conversations/services/routing.py): the queue it is in, and the menu bot's
    # state while the customer picks one (menus sent at this level; the sub-menu shown).
    queue = models.ForeignKey(
        "Queue", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    menu_attempts = models.PositiveSmallIntegerField(default=0)
    menu_parent = models.ForeignKey(
        "Queue", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_message_at = models.DateTimeField(_("last message"), default=timezone.now)
    last_message_preview = models.CharField(
        _("last message preview"), max_length=200, blank=True, default=""
    )
    # An agent's last reply (not the bot's): automatic greetings and away messages stay
    # quiet for a while after it.
    last_agent_reply_at = models.DateTimeField(null=True, blank=True)
    # The current opening, for the reports (services/inbound.py keeps them): when it
    # (re)opened (None: at ``created_at``), the customer's first message in it and the
    # first human reply after that, and since when the customer waits for an answer
    # (None: not waiting).
    opened_at = models.DateTimeField(null=True, blank=True)
    first_inbound_at = models.DateTimeField(null=True, blank=True)
    first_reply_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        db_table = "whatsapp_atendimentos"
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.UniqueConstraint(fields=["session", "contact"], name="uniq_conversation"),
        ]
        indexes = [
            models.Index("session", models.F("last_message_at").desc(), name="conv_by_recent"),
            models.Index(fields=["updated_at"], name="conv_by_updated"),
            # The inbox across all the numbers a user sees: walked in order and filtered
            # by number, instead of sorting every conversation of those numbers.
            models.Index(
                models.F("last_message_at").desc(), models.F("id").desc(), name="conv_by_activity"
            ),
            # The unread badges (selectors.unread_counts): only the few rows with any.
            models.Index(
                models.F("last_message_at").desc(),
                condition=Q(unread_count__gt=0),
                name="conv_unread_by_activity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ({self.session})"

    @property
    def preview_display(self) -> str:
        """The list preview in the reader's language: a stored "📍" alone becomes
        "📍 Location" (labels are added at render time, never stored translated)."""
        kind = PREVIEW_KIND_OF_ICON.get(self.last_message_preview)
        if kind is None:
            return self.last_message_preview
        return f"{self.last_message_preview} {Message.Kind(kind).label}"


class Message(models.Model):
    class Direction(models.TextChoices):
        # The seed's names: from the customer / from us.
        INBOUND = "CLIENTE", _("Customer")
        OUTBOUND = "ATENDENTE", _("Agent")
        # The team's private note: never sent, so no outbox or receipt query matches it.
        NOTE = "NOTA", _("Private note")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Audio")
        VOICE = "voice", _("Voice note")
        DOCUMENT = "document", _("Document")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACT = "contact", _("Contact card")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")
        NOTE = "note", _("Private note")

    class MediaStatus(models.TextChoices):
        NONE = "", _("No media")
        DOWNLOADING = "downloading", _("Downloading")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Download failed")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The dedupe key: WhatsApp's id, generated by us up front for outbound messages.
    wa_id = models.CharField(_("WhatsApp id"), max_length=128)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(_("text"), blank=True, default="")
    # In groups: who wrote it.
    sender_jid = models.CharField(_("sender JID"), max_length=128, blank=True, default="")
    sender_name = models.CharField(_("sender name"), max_length=128, blank=True, default="")
    media = models.FileField(_("media file"), upload_to="%Y/%m/", blank=True, max_length=255)
    media_status = models.CharField(
        max_length=12, choices=MediaStatus.choices, blank=True, default=MediaStatus.NONE
    )
    media_ref = BytesField(null=True, blank=True, editable=False)
    mime_type = models.CharField(_("MIME type"), max_length=127, blank=True, default="")
    file_name = models.CharField(_("file name"), max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(_("size"), null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    location_name = models.CharField(max_length=255, blank=True, default="")
    # Where the previous system kept the file, for imported messages whose file was not
    # copied here (see the import_supabase command).
    media_link = models.URLField(_("media link"), max_length=2048, blank=True, default="")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    error = models.TextField(_("error"), blank=True, default="")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sent_messages",
        verbose_name=_("sent by"),
    )
    wa_timestamp = models.DateTimeField(_("WhatsApp time"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    read_at = models.DateTimeField(_("read by agent"), null=True, blank=True)
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    quoted_wa_id = models.CharField(max_length=128, blank=True, default="")
    # Outbox bookkeeping: tries so far and when the next may run.
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Handed to WhatsApp and not yet confirmed: after a crash we cannot know if it went out.
    in_flight = models.BooleanField(default=False)
    # An agent read it and WhatsApp has not been told yet.
    receipt_pending = models.BooleanField(default=False)
    client_key = models.CharField(max_length=64, blank=True, default="")
    # Sent by the number's bot (the queue menu), not by an agent nor from the phone.
    automatic = models.BooleanField(_("automatic"), default=False)
    # Why an automatic message went out (greeting, away, keyword, close; menu for the bot).
    auto_reason = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        db_table = "whatsapp_mensagens"
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "wa_id"], name="uniq_message_wa_id"),
            models.UniqueConstraint(
                fields=["sent_by", "client_key"],
                condition=~Q(client_key=""),
                name="uniq_message_client_key",
            ),
        ]
        indexes = [
            models.Index("conversation", models.F("id").desc(), name="msg_by_conversation"),
            # msg_by_time, the reports' index on when a message was said, is made by
            # migration 0008_reports: PostgreSQL's covers the columns the reports count
            # by (index-only scans), which Django would warn about on SQLite.
            models.Index(fields=["status"], condition=Q(status="pending"), name="msg_outbox"),
            models.Index(
                fields=["conversation"], condition=Q(receipt_pending=True), name="msg_receipts"
            ),
            models.Index(
                fields=["conversation", "created_at"],
                condition=Q(automatic=True),
                name="msg_automatic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.wa_id}"

    @property
    def is_inbound(self) -> bool:
        return self.direction == self.Direction.INBOUND

    @property
    def is_note(self) -> bool:
        return self.direction == self.Direction.NOTE


class QuickReply(models.Model):
    """A message template (it grew out of quick replies, hence its name here): personal
    (``session`` empty: its owner's alone) or shared by a number's owner with that
    number's agents (``session`` set). The text may hold variables
    (``conversations/services/variables.py``), checked when it is saved; an optional file
    goes with it as the caption's attachment."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="quick_replies",
        verbose_name=_("owner"),
    )
    session = models.ForeignKey(
        WhatsAppSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="templates",
        verbose_name=_("shared on number"),
        help_text=_("Empty: personal, only its owner sees it."),
    )
    shortcut = models.SlugField(_("shortcut"), max_length=50)
    text = models.TextField(_("text"), blank=True, default="")
    file = models.FileField(_("file"), upload_to="templates/%Y/%m/", blank=True, max_length=255)
    file_name = models.CharField(_("file name"), max_length=255, blank=True, default="")
    mime_type = models.CharField(_("MIME type"), max_length=127, blank=True, default="")
    file_size = models.BigIntegerField(_("size"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_quick_replies"
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(session__isnull=True),
                name="uniq_personal_template",
            ),
            models.UniqueConstraint(
                fields=["session", "shortcut"],
                condition=Q(session__isnull=False),
                name="uniq_shared_template",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"

    @property
    def is_shared(self) -> bool:
        return self.session_id is not None


# Kinds that carry a file (the ones an agent can also send).
FILE_KINDS = frozenset(
    {
        Message.Kind.IMAGE,
        Message.Kind.VIDEO,
        Message.Kind.AUDIO,
        Message.Kind.VOICE,
        Message.Kind.DOCUMENT,
        Message.Kind.STICKER,
    }
)

# The icon a list preview starts with, per kind of message.
PREVIEW_ICONS: dict[str, str] = {
    Message.Kind.IMAGE: "📷",
    Message.Kind.VIDEO: "🎥",
    Message.Kind.AUDIO: "🎵",
    Message.Kind.VOICE: "🎤",
    Message.Kind.DOCUMENT: "📄",
    Message.Kind.STICKER: "💟",
    Message.Kind.LOCATION: "📍",
    Message.Kind.CONTACT: "👤",
}
PREVIEW_KIND_OF_ICON = {icon: kind for kind, icon in PREVIEW_ICONS.items()}


def message_preview(kind: str, body: str, file_name: str = "", location_name: str = "") -> str:
    """The conversation list's preview, stored in no language: an icon and the text,
    or the icon alone (``Conversation.preview_display`` adds the kind's label)."""
    if kind == Message.Kind.CONTACT:
        body = vcard.parse(body).name  # not the raw "BEGIN:VCARD VERSION:3.0 ..."
    text = " ".join((body or file_name or location_name or "").split())
    icon = PREVIEW_ICONS.get(kind)
    if icon:
        text = f"{icon} {text}".strip()
    return text[:200]


# --- Teams: tags and private notes ------------------------------------------------------


class Tag(models.Model):
    """A label of one owner's (a number's owner): on conversations and on contacts of the
    numbers they own. Agents of those numbers use their owner's tags."""

    class Color(models.TextChoices):
        # A fixed palette: a colour is a CSS class (``tag-<colour>``), never an inline style.
        GRAY = "gray", _("Gray")
        RED = "red", _("Red")
        ORANGE = "orange", _("Orange")
        YELLOW = "yellow", _("Yellow")
        GREEN = "green", _("Green")
        TEAL = "teal", _("Teal")
        BLUE = "blue", _("Blue")
        PURPLE = "purple", _("Purple")
        PINK = "pink", _("Pink")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tags",
        verbose_name=_("owner"),
    )
    name = models.CharField(_("name"), max_length=40)
    color = models.CharField(_("colour"), max_length=10, choices=Color.choices, default=Color.GRAY)
    conversations = models.ManyToManyField(
        Conversation, related_name="tags", blank=True, verbose_name=_("conversations")
    )
    contacts = models.ManyToManyField(
        Contact, related_name="tags", blank=True, verbose_name=_("contacts")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        db_table = "whatsapp_tags"
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="uniq_tag_name"),
        ]

    def __str__(self) -> str:
        return self.name


class NoteMention(models.Model):
    """An agent @mentioned in a private note: unread until they open the conversation."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="note_mentions"
    )
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        db_table = "whatsapp_note_mentions"
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="uniq_note_mention"),
        ]
        indexes = [
            models.Index(
                fields=["user", "conversation"],
                condition=Q(read_at__isnull=True),
                name="mention_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.user_id} in {self.message_id}"


class CustomField(models.Model):
    """A field an owner adds to the contacts of their numbers (e.g. "Plan", "Birthday")."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="custom_fields"
    )
    name = models.CharField(_("name"), max_length=64)
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    # For choice fields: the allowed values, in the order they are offered.
    choices = models.JSONField(_("choices"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "contacts_custom_fields"
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="uniq_custom_field_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ContactFieldValue(models.Model):
    """One custom field's value for one contact, stored as checked text (numbers in plain
    decimal, dates as YYYY-MM-DD, choices as the choice itself)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="field_values")
    field = models.ForeignKey(CustomField, on_delete=models.CASCADE, related_name="values")
    value = models.CharField(_("value"), max_length=500)

    class Meta:
        db_table = "contacts_field_values"
        verbose_name = _("custom field value")
        verbose_name_plural = _("custom field values")
        constraints = [
            models.UniqueConstraint(fields=["contact", "field"], name="uniq_contact_field_value"),
        ]

    def __str__(self) -> str:
        return f"{self.field}: {self.value}"


# The queues' models live in their own module; imported here so Django finds them (and
# so `from conversations.models import Queue` keeps working). LegacyRecord: what the import
# from the previous system already brought in.
from conversations.legacy_models import LegacyRecord  # noqa: E402, F401
from conversations.push_models import PushOutbox, PushSubscription, PushThrottle  # noqa: E402, F401
from conversations.queue_models import (  # noqa: E402, F401
    AgentPresence,
    ConversationEvent,
    Queue,
    QueueAgent,
    QueueSettings,
)

# Outgoing webhooks' endpoints and deliveries, in their own module likewise.
from conversations.webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
