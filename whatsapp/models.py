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


def default_time_zone() -> str:
    return settings.TIME_ZONE


class NumberSettings(models.Model):
    """Per-number configuration (the seed's ``whatsapp_configuracoes``): the automatic
    replies, their business hours and their limits. See ``whatsapp.hours`` for the
    schedule's shape and ``conversations.services.autoreply`` for the rules."""

    class GreetingOn(models.TextChoices):
        NEW_CONVERSATION = "conversation", _("First message of a new conversation")
        FIRST_EVER = "first", _("A contact's first message ever")

    session = models.OneToOneField(
        WhatsAppSession, on_delete=models.CASCADE, related_name="number_settings"
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default=default_time_zone)
    greeting_enabled = models.BooleanField(_("send greeting"), default=False)
    greeting_message = models.TextField(_("greeting message"), blank=True, default="")
    greeting_on = models.CharField(
        _("greet on"),
        max_length=12,
        choices=GreetingOn.choices,
        default=GreetingOn.NEW_CONVERSATION,
    )
    greeting_delay_seconds = models.PositiveSmallIntegerField(_("greeting delay (s)"), default=0)
    away_enabled = models.BooleanField(_("send away message"), default=False)
    away_message = models.TextField(_("away message"), blank=True, default="")
    away_period_hours = models.PositiveSmallIntegerField(
        _("away message at most every (h)"), default=4
    )
    hours_enabled = models.BooleanField(_("use business hours"), default=False)
    # {"weekly": {"mon": [["08:00", "18:00"]], ...}, "exceptions": [...]}: whatsapp.hours.
    business_hours = models.JSONField(_("business hours"), default=dict, blank=True)
    auto_close_hours = models.PositiveSmallIntegerField(
        _("close idle conversations after (h)"), default=0, help_text=_("0: never.")
    )
    auto_close_message = models.TextField(_("closing message"), blank=True, default="")
    auto_daily_cap = models.PositiveSmallIntegerField(
        _("automatic messages per conversation a day"), default=10
    )
    agent_silence_minutes = models.PositiveSmallIntegerField(
        _("quiet after an agent's reply (min)"), default=30
    )
    auto_rate_per_minute = models.PositiveSmallIntegerField(
        _("automatic messages a minute"), default=20
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_configuracoes"
        verbose_name = _("number settings")
        verbose_name_plural = _("number settings")

    def __str__(self) -> str:
        return f"settings of {self.session}"


class KeywordRule(models.Model):
    """An automatic answer to customers' messages that match, tried in ``position`` order;
    the first match wins."""

    class Match(models.TextChoices):
        CONTAINS = "contains", _("contains")
        EXACT = "exact", _("is exactly")
        STARTS = "starts", _("starts with")
        REGEX = "regex", _("matches the regular expression")

    class When(models.TextChoices):
        ALWAYS = "always", _("always")
        INSIDE = "inside", _("inside business hours")
        OUTSIDE = "outside", _("outside business hours")

    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.CASCADE, related_name="keyword_rules"
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    match = models.CharField(
        _("match"), max_length=10, choices=Match.choices, default=Match.CONTAINS
    )
    pattern = models.CharField(_("keyword"), max_length=200)
    answer = models.TextField(_("answer"), blank=True, default="")
    file = models.FileField(_("file"), upload_to="rules/%Y/%m/", blank=True, max_length=255)
    when = models.CharField(_("when"), max_length=10, choices=When.choices, default=When.ALWAYS)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whatsapp_keyword_rules"
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")
        ordering = ["session", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.get_match_display()} {self.pattern!r}"
