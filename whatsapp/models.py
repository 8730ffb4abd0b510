from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class WhatsAppSession(models.Model):
    """A linked WhatsApp number (the seed's "session")."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        WAITING_QR = "waiting_qr", _("Waiting for QR scan")
        PAIRING = "pairing", _("Pairing")
        CONNECTED = "connected", _("Connected")
        DISCONNECTED = "disconnected", _("Disconnected")
        LOGGED_OUT = "logged_out", _("Logged out")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="whatsapp_sessions",
        verbose_name=_("owner"),
    )
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="SessionAgent",
        related_name="agent_sessions",
        blank=True,
        verbose_name=_("agents"),
    )
    name = models.CharField(_("name"), max_length=100)
    phone_number = models.CharField(_("phone number"), max_length=32, blank=True, default="")
    jid = models.CharField(_("device JID"), max_length=128, blank=True, default="")
    push_name = models.CharField(_("WhatsApp name"), max_length=128, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW, db_index=True
    )
    status_detail = models.CharField(_("status detail"), max_length=255, blank=True, default="")
    qr_code = models.TextField(_("last QR code"), blank=True, default="")
    qr_updated_at = models.DateTimeField(_("QR code time"), null=True, blank=True)
    pair_phone = models.CharField(_("pairing phone"), max_length=32, blank=True, default="")
    pair_code = models.CharField(_("pairing code"), max_length=16, blank=True, default="")
    # When someone last asked to link it (the link window, `whatsapp_connect`, the API). An
    # unlinked number runs a client, and shows QR codes, only for a while after that.
    link_requested_at = models.DateTimeField(_("link requested"), null=True, blank=True)
    # The gateway (WHATSAPP_GATEWAY) the number was linked with: its device keys live there.
    gateway = models.CharField(_("linked with"), max_length=32, blank=True, default="")
    connected_at = models.DateTimeField(_("linked since"), null=True, blank=True)
    # When ``status`` last changed: "disconnected since 14:02".
    status_since = models.DateTimeField(_("status since"), null=True, blank=True)
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True)
    # The worker's lease on this number: who runs it, until when, with which fencing token.
    lease_holder = models.CharField(_("lease holder"), max_length=128, blank=True, default="")
    lease_token = models.UUIDField(_("lease token"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expiry"), null=True, blank=True)
    child_restarts = models.PositiveIntegerField(_("client restarts"), default=0)
    # Set by a user; the worker holding the number unlinks the device, then clears it.
    logout_requested = models.BooleanField(_("logout requested"), default=False)
    ignore_groups = models.BooleanField(_("ignore group chats"), default=False)
    history_days = models.PositiveSmallIntegerField(_("history sync days"), default=7)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        db_table = "whatsapp_sessions"
        verbose_name = _("WhatsApp number")
        verbose_name_plural = _("WhatsApp numbers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="uniq_session_name_per_owner"),
            # A phone can be linked once; a logged-out row keeps its phone for history.
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=~Q(phone_number="") & ~Q(status="logged_out"),
                name="uniq_linked_phone_number",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_connected(self) -> bool:
        return self.status == self.Status.CONNECTED


class SessionAgent(models.Model):
    """A user allowed to work a number's inbox."""

    session = models.ForeignKey(WhatsAppSession, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whatsapp_session_agents"
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="uniq_session_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.session}"


class NumberSettings(models.Model):
    """Per-number configuration (the seed's ``whatsapp_configuracoes``)."""

    session = models.OneToOneField(
        WhatsAppSession, on_delete=models.CASCADE, related_name="number_settings"
    )
    greeting_enabled = models.BooleanField(_("send greeting"), default=False)
    greeting_message = models.TextField(_("greeting message"), blank=True, default="")
    away_enabled = models.BooleanField(_("send away message"), default=False)
    away_message = models.TextField(_("away message"), blank=True, default="")
    # {"mon": [["08:00", "18:00"]], ...}; empty means always open.
    business_hours = models.JSONField(_("business hours"), default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_configuracoes"
        verbose_name = _("number settings")
        verbose_name_plural = _("number settings")

    def __str__(self) -> str:
        return f"settings of {self.session}"
