"""Outgoing webhooks: the endpoints owners and admins register, and the outbox of
deliveries the worker sends to them (imported by conversations.models, where Django
finds them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from whatsapp.models import WhatsAppSession


class WebhookEndpoint(models.Model):
    """A URL that receives the events of some numbers, signed with its secret."""

    class Event(models.TextChoices):
        MESSAGE_RECEIVED = "message.received", _("Message received")
        MESSAGE_SENT = "message.sent", _("Message sent")
        MESSAGE_STATUS = "message.status", _("Message status changed")
        CONVERSATION_CREATED = "conversation.created", _("Conversation created")
        CONVERSATION_UPDATED = "conversation.updated", _("Conversation updated")
        CONVERSATION_CLOSED = "conversation.closed", _("Conversation closed")
        NUMBER_STATUS = "number.status", _("Number status changed")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        verbose_name=_("owner"),
    )
    description = models.CharField(_("description"), max_length=120, blank=True)
    url = models.URLField(_("URL"), max_length=500)
    # HMAC needs the raw secret: it is stored, shown once at creation, never rendered again.
    secret = models.CharField(_("secret"), max_length=80)
    events = models.JSONField(_("events"), default=list)
    sessions = models.ManyToManyField(
        WhatsAppSession,
        related_name="webhook_endpoints",
        blank=True,
        verbose_name=_("numbers"),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_endpoints"
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row the worker sends, and its log.

    Written in the transaction of the change it tells of. ``body`` is the exact JSON
    sent (the signature covers it). ``conversation_id`` orders deliveries: the worker
    never sends one while an earlier one of the same endpoint and conversation is
    still pending."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(_("event id"))
    event_type = models.CharField(_("event"), max_length=40)
    body = models.TextField()
    # A plain integer, not a key: the log outlives a deleted conversation.
    conversation_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["endpoint", "conversation_id", "id"], name="webhook_delivery_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
