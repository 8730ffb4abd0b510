"""A number's contacts as a CSV file, in the columns the import reads back unchanged."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from conversations.contact_selectors import contacts_for_export, custom_field_list
from conversations.models import Contact
from conversations.services.contact_import import FORMULA_STARTS
from whatsapp.models import WhatsAppSession


def _cell(value: str) -> str:
    # A name such as "=HYPERLINK(...)" must stay text in a spreadsheet.
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def contact_tags_cell(contact: Contact) -> str:
    """The ``tags`` column: the contact's tags by name, comma separated (the import reads
    them back)."""
    return ", ".join(sorted((t.name for t in contact.tags.all()), key=str.lower))


def contacts_csv_rows(*, session: WhatsAppSession) -> Iterator[str]:
    """The file, a line at a time (a large number's contacts are streamed)."""
    fields = custom_field_list(owner_id=session.owner_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: list[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(c) for c in cells])
        return buffer.getvalue()

    # A byte order mark: spreadsheets then open the accents right.
    yield "\ufeff" + line(["name", "phone", "whatsapp_name", "tags", *(f.name for f in fields)])
    for contact in contacts_for_export(session=session).iterator(chunk_size=500):
        values = {v.field_id: v.value for v in contact.field_values.all()}
        yield line(
            [
                contact.saved_name,
                contact.phone,
                contact.push_name,
                contact_tags_cell(contact),
                *(values.get(f.pk, "") for f in fields),
            ]
        )
