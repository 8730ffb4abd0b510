"""The owner's automatic-reply setup of a number: its settings and keyword rules.

Every field is checked (``whatsapp.automation``) before anything is saved; the rules
apply to this process at once and to the others within a few seconds."""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from conversations.services.autoreply import settings_changed
from vbcrm.errors import field_error
from vbcrm.types import User
from whatsapp.automation import SETTINGS_FIELDS, rule_clean, settings_clean
from whatsapp.models import KeywordRule, NumberSettings, WhatsAppSession

logger = logging.getLogger(__name__)


def number_settings_get(*, session: WhatsAppSession) -> NumberSettings:
    conf, _created = NumberSettings.objects.get_or_create(session=session)
    return conf


def number_settings_update(
    *, session: WhatsAppSession, by: User, values: dict[str, Any]
) -> NumberSettings:
    """Save the number's automatic-reply settings: all of ``values`` or nothing."""
    clean = settings_clean(values)
    if clean.get("greeting_on", NumberSettings.GreetingOn.NEW_CONVERSATION) not in (
        NumberSettings.GreetingOn.values
    ):
        raise field_error("greeting_on", _("Unknown choice."))
    with transaction.atomic():
        conf = NumberSettings.objects.select_for_update().get_or_create(session=session)[0]
        for field in SETTINGS_FIELDS:
            if field in clean:
                setattr(conf, field, clean[field])
        conf.save()
    settings_changed(session.pk)
    logger.info("automatic replies saved session=%s by=%s", session.pk, by.pk)
    return conf


def keyword_rule_create(
    *, session: WhatsAppSession, values: dict[str, Any], file: UploadedFile | None = None
) -> KeywordRule:
    clean = rule_clean({**values, "has_file": file is not None})
    with transaction.atomic():
        last = KeywordRule.objects.filter(session=session).aggregate(Max("position"))
        rule = KeywordRule(
            session=session,
            position=(last["position__max"] or 0) + 1,
            match=clean["match"],
            pattern=clean["pattern"],
            answer=clean["answer"],
            when=clean["when"],
            active=bool(clean.get("active", True)),
        )
        if file is not None:
            rule.file.save(file.name or "file", file, save=False)
        rule.save()
    settings_changed(session.pk)
    logger.info("keyword rule created id=%s session=%s", rule.pk, session.pk)
    return rule


def keyword_rule_update(
    *,
    rule: KeywordRule,
    values: dict[str, Any],
    file: UploadedFile | None = None,
    drop_file: bool = False,
) -> KeywordRule:
    keeps_file = file is not None or (bool(rule.file) and not drop_file)
    clean = rule_clean({**values, "has_file": keeps_file})
    rule.match, rule.pattern = clean["match"], clean["pattern"]
    rule.answer, rule.when = clean["answer"], clean["when"]
    rule.active = bool(clean.get("active", True))
    if file is not None:
        rule.file.save(file.name or "file", file, save=False)
    elif drop_file:
        # The file stays on disk: a reply already queued with it may still be sending.
        rule.file = None
    rule.save()
    settings_changed(rule.session_id)
    return rule


def keyword_rule_delete(*, rule: KeywordRule) -> None:
    session_id = rule.session_id
    rule.delete()
    settings_changed(session_id)


def keyword_rule_move(*, rule: KeywordRule, up: bool) -> None:
    """Swap the rule with the one before (``up``) or after it."""
    with transaction.atomic():
        rules = list(KeywordRule.objects.select_for_update().filter(session_id=rule.session_id))
        index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
        other = index - 1 if up else index + 1
        if not 0 <= other < len(rules):
            return
        rules[index], rules[other] = rules[other], rules[index]
        for position, r in enumerate(rules, 1):
            if r.position != position:
                r.position = position
                r.save(update_fields=["position", "updated_at"])
    settings_changed(rule.session_id)
