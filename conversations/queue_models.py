"""The queues (departments) of a number, the menu bot's settings, the agents'
availability, and the record of every assignment, transfer and queue change
(imported by conversations.models, where Django finds them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation
from whatsapp.models import WhatsAppSession


class Queue(models.Model):
    """A department of a number ("Vendas", "Suporte"): the menu's options, and where
    conversations wait for (or are given to) its agents. A queue with a ``parent`` is an
    option of its parent's sub-menu; menus nest one level, no deeper."""

    class Assignment(models.TextChoices):
        OFF = "off", _("Off")
        ROUND_ROBIN = "round_robin", _("Round-robin")

    session = models.ForeignKey(WhatsAppSession, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(_("name"), max_length=60)
    color = models.CharField(_("colour"), max_length=7, default="#075e54")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("sub-menu of"),
    )
    assignment = models.CharField(
        _("automatic assignment"),
        max_length=12,
        choices=Assignment.choices,
        default=Assignment.OFF,
    )
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="QueueAgent",
        related_name="queues",
        blank=True,
        verbose_name=_("agents"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whatsapp_queues"
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="uniq_queue_name"),
            models.CheckConstraint(
                condition=Q(color__regex=r"^#[0-9a-fA-F]{6}$"), name="queue_color_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class QueueAgent(models.Model):
    """An agent in a queue; ``last_assigned_at`` breaks round-robin ties."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "whatsapp_queue_agents"
        verbose_name = _("queue agent")
        verbose_name_plural = _("queue agents")
        constraints = [
            models.UniqueConstraint(fields=["queue", "user"], name="uniq_queue_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.queue}"


class QueueSettings(models.Model):
    """A number's menu bot and assignment limits (beside whatsapp's NumberSettings,
    whose greeting and away message are the automatic replies' own)."""

    session = models.OneToOneField(
        WhatsAppSession, on_delete=models.CASCADE, related_name="queue_settings"
    )
    menu_enabled = models.BooleanField(_("send the menu"), default=True)
    menu_greeting = models.TextField(_("menu greeting"), blank=True, default="")
    menu_max_attempts = models.PositiveSmallIntegerField(_("menus before the default"), default=3)
    default_queue = models.ForeignKey(
        Queue,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default queue"),
    )
    menu_on_reopen = models.BooleanField(_("menu again when a closed one reopens"), default=True)
    # Open conversations an agent may hold on this number before new ones wait; 0: no cap.
    agent_cap = models.PositiveSmallIntegerField(_("open conversations per agent"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_queue_settings"
        verbose_name = _("queue settings")
        verbose_name_plural = _("queue settings")

    def __str__(self) -> str:
        return f"queues of {self.session}"


class AgentPresence(models.Model):
    """Whether an agent takes automatic assignments: their choice in the page header,
    and their live sockets (away once the last one closed for a while)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence"
    )
    available = models.BooleanField(_("available"), default=False)
    sockets = models.IntegerField(default=0)
    last_socket_closed_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_agent_presence"
        verbose_name = _("agent presence")
        verbose_name_plural = _("agent presence")

    def __str__(self) -> str:
        return f"{self.user}: {'available' if self.available else 'away'}"


class ConversationEvent(models.Model):
    """What happened to a conversation, with when: an assignment, transfer or queue change
    (shown in the thread as a system line), and the moments the reports measure: closed,
    reopened, and the first human reply of each opening. ``actor`` None: done
    automatically (the menu bot, round-robin, a customer's message reopening it, a reply
    from the phone).

    ``since``: for ``closed``, when that opening began (resolution time); for
    ``replied``, the customer's first message of that opening (first response time).
    ``to_user`` of ``closed``: who held the conversation when it closed."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        QUEUE = "queue", _("Queue changed")
        CLOSED = "closed", _("Closed")
        REOPENED = "reopened", _("Reopened")
        REPLIED = "replied", _("First reply")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="routing_events"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_queue = models.ForeignKey(
        Queue, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_queue = models.ForeignKey(
        Queue, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "whatsapp_conversation_events"
        verbose_name = _("conversation event")
        verbose_name_plural = _("conversation events")
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="conv_event_by_time"),
            # The reports: one kind over a date range.
            models.Index(fields=["kind", "created_at"], name="conv_event_by_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.conversation_id}"
