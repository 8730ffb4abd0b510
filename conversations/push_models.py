"""Web push: the browsers where agents turned notifications on, the outbox of customer
messages to notify, and when each agent was last notified of each conversation
(imported by conversations.models, where Django finds them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class PushSubscription(models.Model):
    """One browser of one agent (what its PushManager.subscribe() answered)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="push_subscriptions",
        verbose_name=_("user"),
    )
    endpoint = models.URLField(_("endpoint"), max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)

    class Meta:
        db_table = "push_subscriptions"
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")

    def __str__(self) -> str:
        return f"{self.user}: {self.user_agent[:40]}"


class PushOutbox(models.Model):
    """A customer's message to notify agents of; written with the message, taken by the
    worker (who decides whom to notify when it sends)."""

    message_id = models.BigIntegerField()
    conversation_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "push_outbox"

    def __str__(self) -> str:
        return f"message {self.message_id}"


class PushThrottle(models.Model):
    """When an agent was last notified of a conversation (at most one a minute)."""

    user_id = models.BigIntegerField()
    conversation_id = models.BigIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        db_table = "push_throttle"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "conversation_id"], name="uniq_push_throttle"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.conversation_id}"
