"""What was imported from the previous system, so a second import skips it."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class LegacyRecord(models.Model):
    """One row of the previous system's tables and the row it became here.

    ``source`` is the table it came from (``whatsapp_sessions``, ``whatsapp_atendimentos``,
    ``whatsapp_configuracoes``), ``source_id`` its key there, ``target_id`` the key of the
    number, conversation or settings row made from it. Messages need no record: their
    WhatsApp id (or ``legacy:<id>``) is already unique within their conversation.
    """

    source = models.CharField(_("source table"), max_length=40)
    source_id = models.CharField(_("source id"), max_length=128)
    target_id = models.BigIntegerField(_("imported as"))
    imported_at = models.DateTimeField(_("imported"), auto_now_add=True)

    class Meta:
        db_table = "legacy_records"
        verbose_name = _("imported record")
        verbose_name_plural = _("imported records")
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="uniq_legacy_record"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.source_id} -> {self.target_id}"
