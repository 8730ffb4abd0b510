"""Contacts from a CSV file into one number: every row checked first, then the good ones
written in one transaction (a file is imported whole or not at all), keyed by (number,
phone) so that importing the same file again changes nothing.

Columns, by header (any case, any order): ``phone`` (required), ``name``, ``tags``, and
one per custom field of the number's owner, by the field's name. ``whatsapp_name`` (in
our exports) is read-only and skipped. An empty cell leaves the stored value as it is.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.models import Contact, ContactFieldValue, CustomField, Tag
from conversations.services.contacts import custom_value_clean
from conversations.services.team import tag_create, tag_name_clean
from realtime import events
from vbcrm.errors import unstorable
from whatsapp.models import WhatsAppSession
from whatsapp.phones import phone_parse

logger = logging.getLogger(__name__)

MAX_ROWS = 50_000
# Cells starting with these are written with a leading apostrophe (so a spreadsheet does
# not run them as formulas); reading takes it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
READ_ONLY_COLUMNS = frozenset({"whatsapp_name"})


@dataclass
class Refusal:
    line: int  # the file's line, counting the header as line 1
    phone: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    # Whole columns left out, and why (an unknown field, a repeated header...).
    ignored_columns: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass
class _Row:
    line: int
    phone: str
    name: str
    values: dict[CustomField, str]
    tags: list[str] = field(default_factory=list)


def unformula(cell: str) -> str:
    """A cell as we wrote it in an export (without the formula guard's apostrophe)."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def _file_error(message: str, code: str) -> ValidationError:
    return ValidationError({"file": ValidationError(message, code=code)})


def _decode(data: bytes) -> str:
    limit = settings.VBCRM_CONTACT_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise _file_error(
            _("The file is larger than %(n)s KB: split it and import the parts.")
            % {"n": limit // 1024},
            "too_large",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(
            _("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."),
            "wrong_encoding",
        ) from None
    if "\x00" in text:
        raise _file_error(
            _("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."),
            "wrong_encoding",
        )
    if not text.strip():
        raise _file_error(_("The file is empty."), "empty")
    return text


def _reader(text: str) -> Any:  # a csv reader (typeshed names no class for it)
    # Spreadsheets in Brazil (and much of Europe) save CSV with semicolons.
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _columns(
    header: list[str], fields: list[CustomField], report: ImportReport
) -> tuple[dict[str, int], dict[CustomField, int]]:
    by_name = {f.name.lower(): f for f in fields}
    fixed: dict[str, int] = {}
    custom: dict[CustomField, int] = {}
    seen: set[str] = set()
    for index, raw in enumerate(header):
        name = " ".join(raw.split())
        key = name.lower()
        if not name:
            continue
        if key in seen:
            report.ignored_columns.append((name, _("repeated column")))
            continue
        seen.add(key)
        if key in ("phone", "name", "tags"):
            fixed[key] = index
        elif key in by_name:
            custom[by_name[key]] = index
        elif key not in READ_ONLY_COLUMNS:
            report.ignored_columns.append((name, _("no custom field has this name")))
    if "phone" not in fixed:
        raise _file_error(
            _("The file has no “phone” column. The first line must name the columns."),
            "no_phone_column",
        )
    return fixed, custom


def _tag_names(cell: str) -> list[str]:
    """A ``tags`` cell's names ("VIP, Atacado" or "VIP; Atacado"), each checked, without
    repeats (in any case); ValidationError naming the first bad one."""
    names: dict[str, str] = {}
    for part in cell.replace(";", ",").split(","):
        if part.strip():
            name = tag_name_clean(part)
            names.setdefault(name.lower(), name)
    return list(names.values())


def _check_rows(
    reader: Any, fixed: dict[str, int], custom: dict[CustomField, int], country: str
) -> tuple[list[_Row], list[Refusal]]:
    """The rows to write, and the ones refused."""
    rows: list[_Row] = []
    refused: list[Refusal] = []
    first_line: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if line > MAX_ROWS + 1:
            raise _file_error(
                _("The file has more than %(n)d rows: split it and import the parts.")
                % {"n": MAX_ROWS},
                "too_many_rows",
            )
        cells = [unformula(c.strip()) for c in cells]
        if not any(cells):
            continue

        def cell(index: int, cells: list[str] = cells) -> str:
            return cells[index] if index < len(cells) else ""

        typed_phone = cell(fixed["phone"])
        if any(unstorable(c) for c in cells):
            refused.append(Refusal(line, typed_phone, _("characters that cannot be stored")))
            continue
        phone = phone_parse(typed_phone, country)
        if phone is None:
            reason = _("no phone") if not typed_phone else _("not a valid phone number")
            refused.append(Refusal(line, typed_phone, reason))
            continue
        if phone in first_line:
            refused.append(
                Refusal(
                    line,
                    typed_phone,
                    _("the same phone as line %(n)d") % {"n": first_line[phone]},
                )
            )
            continue
        name = " ".join(cell(fixed["name"]).split()) if "name" in fixed else ""
        if len(name) > 128:
            refused.append(Refusal(line, typed_phone, _("the name is over 128 characters")))
            continue
        values: dict[CustomField, str] = {}
        problems = []
        for custom_field, index in custom.items():
            raw = cell(index)
            if not raw:
                continue
            try:
                values[custom_field] = custom_value_clean(custom_field, raw)
            except ValidationError as exc:
                problems.append(exc.messages[0])
        tags: list[str] = []
        if "tags" in fixed:
            try:
                tags = _tag_names(cell(fixed["tags"]))
            except ValidationError as exc:
                problems.append(exc.messages[0])
        if problems:
            refused.append(Refusal(line, typed_phone, " ".join(problems)))
            continue
        first_line[phone] = line
        rows.append(_Row(line, phone, name, values, tags))
    return rows, refused


def _write(session: WhatsAppSession, rows: list[_Row], report: ImportReport) -> None:
    # The number's row lock, as a first inbound message takes it before making a contact:
    # a customer writing during the import finds the imported contact, or we find theirs.
    WhatsAppSession.objects.select_for_update(no_key=True).filter(pk=session.pk).values(
        "pk"
    ).first()
    phones = [r.phone for r in rows]
    jids = [f"{p}@s.whatsapp.net" for p in phones]
    by_phone: dict[str, Contact] = {}
    found = Contact.objects.filter(session=session, is_group=False).filter(
        Q(phone__in=phones) | Q(jid__in=jids)
    )
    for contact in found.order_by("pk"):
        key = contact.phone or contact.jid.split("@", 1)[0]
        by_phone.setdefault(key, contact)
    new = [
        Contact(session=session, jid=f"{r.phone}@s.whatsapp.net", phone=r.phone, saved_name=r.name)
        for r in rows
        if r.phone not in by_phone
    ]
    for contact in Contact.objects.bulk_create(new):
        by_phone[contact.phone] = contact
    report.created = len(new)
    created = {c.phone for c in new}
    stored = {
        (v.contact_id, v.field_id): v
        for v in ContactFieldValue.objects.filter(
            contact__in=[by_phone[p] for p in phones if p not in created]
        )
    }
    # The owner's tags the file names, made when missing; the links the contacts have.
    first_spelling: dict[str, str] = {}  # a new tag is named as the file first spells it
    for row in rows:
        for name in row.tags:
            first_spelling.setdefault(name.lower(), name)
    tags_by_name = {
        key: tag_create(session=session, name=name) for key, name in first_spelling.items()
    }
    Link = Tag.contacts.through
    linked = set(
        Link.objects.filter(
            contact_id__in=[c.pk for c in by_phone.values()],
            tag_id__in=[t.pk for t in tags_by_name.values()],
        ).values_list("contact_id", "tag_id")
    )
    links: list[Any] = []
    renamed: list[Contact] = []
    values_new: list[ContactFieldValue] = []
    values_changed: list[ContactFieldValue] = []
    touched: list[Contact] = []
    now = timezone.now()
    for row in rows:
        contact = by_phone[row.phone]
        changed = False
        if row.phone not in created and row.name and row.name != contact.saved_name:
            contact.saved_name = row.name
            renamed.append(contact)
            changed = True
        for custom_field, value in row.values.items():
            current = stored.get((contact.pk, custom_field.pk))
            if current is None:
                values_new.append(
                    ContactFieldValue(contact=contact, field=custom_field, value=value)
                )
                changed = True
            elif current.value != value:
                current.value = value
                values_changed.append(current)
                changed = True
        if _link_tags(contact, row.tags, tags_by_name, links, linked):
            changed = True
        if row.phone in created:
            continue
        if changed:
            contact.updated_at = now
            touched.append(contact)
            report.updated += 1
        else:
            report.unchanged += 1
    Contact.objects.bulk_update(renamed, ["saved_name"], batch_size=1000)
    Contact.objects.bulk_update(touched, ["updated_at"], batch_size=1000)
    ContactFieldValue.objects.bulk_create(values_new, batch_size=1000)
    ContactFieldValue.objects.bulk_update(values_changed, ["value"], batch_size=1000)
    Link.objects.bulk_create(links, batch_size=1000, ignore_conflicts=True)
    # Open inboxes show the names: tell them about the conversations of renamed contacts.
    for contact in renamed:
        for conversation in contact.conversations.select_related("contact", "session"):
            events.conversation_updated(conversation)


def _link_tags(
    contact: Contact,
    names: list[str],
    tags_by_name: dict[str, Tag],
    links: list[Any],
    linked: set[tuple[int, int]],
) -> bool:
    """Queue the contact's links to the row's tags it lacks; whether it gained any. A
    file only adds tags: the ones it leaves out stay."""
    gained = False
    for name in names:
        tag = tags_by_name[name.lower()]
        if (contact.pk, tag.pk) not in linked:
            linked.add((contact.pk, tag.pk))
            links.append(Tag.contacts.through(contact_id=contact.pk, tag_id=tag.pk))
            gained = True
    return gained


def contacts_import(
    *, session: WhatsAppSession, data: bytes, default_country: str | None = None
) -> ImportReport:
    """Import a CSV file's contacts into ``session`` (a number the caller works: checked
    by the caller). Whole-file problems (too large, not UTF-8, no phone column) raise a
    ValidationError on ``file`` and import nothing; refused rows are in the report."""
    if default_country is None:
        default_country = settings.VBCRM_DEFAULT_COUNTRY_CODE
    reader = _reader(_decode(data))
    try:
        header: list[str] = next(reader)
        report = ImportReport()
        fields = list(CustomField.objects.filter(owner_id=session.owner_id))
        fixed, custom = _columns(header, fields, report)
        rows, report.refused = _check_rows(reader, fixed, custom, default_country)
    except csv.Error as exc:
        raise _file_error(
            _("The file is not a CSV file we can read (line %(n)d).") % {"n": reader.line_num},
            "bad_csv",
        ) from exc
    with transaction.atomic():
        _write(session, rows, report)
    logger.info(
        "contacts imported session=%s created=%d updated=%d unchanged=%d refused=%d",
        session.pk,
        report.created,
        report.updated,
        report.unchanged,
        len(report.refused),
    )
    return report


def import_summary(report: ImportReport) -> str:
    """One sentence for the page and the logs of a client."""
    parts = [
        ngettext("%(n)d contact added", "%(n)d contacts added", report.created)
        % {"n": report.created},
        ngettext("%(n)d updated", "%(n)d updated", report.updated) % {"n": report.updated},
        ngettext("%(n)d already up to date", "%(n)d already up to date", report.unchanged)
        % {"n": report.unchanged},
        ngettext("%(n)d row refused", "%(n)d rows refused", len(report.refused))
        % {"n": len(report.refused)},
    ]
    return ", ".join(parts) + "."
