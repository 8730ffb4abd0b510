"""Contacts from CSV files and back: every row checked, refusals reported, the rest written
once in one transaction, and only into the chosen number."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from conversations import services
from conversations.contacts_csv import contacts_csv_rows
from conversations.models import Contact, ContactFieldValue, CustomField, Tag
from conversations.services import contacts, team
from conversations.services.contact_import import contacts_import
from tests.factories import inbound
from vbcrm.errors import error_items
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(alice):
    return contacts.custom_field_create(
        owner=alice, name="Plan", kind="choice", choices=["Gold", "Silver"]
    )


@pytest.fixture
def seats(alice):
    return contacts.custom_field_create(owner=alice, name="Seats", kind="number")


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def values_of(contact: Contact) -> dict[str, str]:
    return {v.field.name: v.value for v in contact.field_values.select_related("field")}


GOOD = csv_bytes(
    "name,phone,Plan,Seats",
    "Ana Souza,+55 11 98888-0001,Gold,3",
    "Bruno,5511988880002,silver,",
    "Carla,(11) 98888-0003,,1.5",
)


def test_a_good_file_adds_every_contact_with_its_fields(number, plan, seats):
    report = contacts_import(session=number, data=GOOD, default_country="55")
    assert (report.created, report.updated, report.unchanged, report.refused) == (3, 0, 0, [])
    ana = Contact.objects.get(session=number, phone="5511988880001")
    assert ana.saved_name == "Ana Souza" and ana.jid == "5511988880001@s.whatsapp.net"
    assert values_of(ana) == {"Plan": "Gold", "Seats": "3"}
    # a choice is stored as the definition spells it; national numbers get the country code
    assert values_of(Contact.objects.get(phone="5511988880002")) == {"Plan": "Silver"}
    assert values_of(Contact.objects.get(phone="5511988880003")) == {"Seats": "1.5"}


def test_importing_the_same_file_again_changes_nothing(number, plan, seats):
    contacts_import(session=number, data=GOOD, default_country="55")
    before = list(Contact.objects.values_list("pk", "saved_name", "updated_at").order_by("pk"))
    values = list(ContactFieldValue.objects.values_list("pk", "value").order_by("pk"))
    report = contacts_import(session=number, data=GOOD, default_country="55")
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert list(Contact.objects.values_list("pk", "saved_name", "updated_at").order_by("pk")) == (
        before
    )
    assert list(ContactFieldValue.objects.values_list("pk", "value").order_by("pk")) == values


def test_bad_rows_are_refused_with_the_reason_and_the_rest_imported(number, plan, seats):
    data = csv_bytes(
        "name,phone,Plan,Seats,Shoe size",
        "Ana,+55 11 98888-0001,Gold,2,42",
        "Nobody,12345,Gold,,",
        "No phone,,,,",
        "Ana again,5511988880001,,,",
        "Diego,+55 11 98888-0004,Platinum,,",
        "Eva,+55 11 98888-0005,,many,",
        "Fabio,+55 11 98888-0006,,,",
    )
    report = contacts_import(session=number, data=data, default_country="55")
    assert report.created == 2
    assert sorted(Contact.objects.values_list("saved_name", flat=True)) == ["Ana", "Fabio"]
    refused = {r.line: r.reason for r in report.refused}
    assert refused == {
        3: "not a valid phone number",
        4: "no phone",
        5: "the same phone as line 2",
        6: "Plan must be one of: Gold, Silver.",
        7: "Seats must be a number.",
    }
    assert report.ignored_columns == [("Shoe size", "no custom field has this name")]


def test_an_existing_contact_is_matched_by_phone_and_updated(number, plan):
    services.message_receive(session=number, msg=inbound(phone="5511988880001"))
    contact = Contact.objects.get()
    report = contacts_import(
        session=number, data=csv_bytes("phone;name;plan", "+5511988880001;Ana;gold")
    )
    assert (report.created, report.updated) == (0, 1)
    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert contact.saved_name == "Ana" and contact.push_name == "Maria"
    assert values_of(contact) == {"Plan": "Gold"}


def test_empty_cells_leave_what_is_stored(number, plan):
    contacts_import(session=number, data=csv_bytes("phone,name,Plan", "5511988880001,Ana,Gold"))
    report = contacts_import(session=number, data=csv_bytes("phone,name,Plan", "5511988880001,,"))
    assert report.unchanged == 1
    contact = Contact.objects.get()
    assert contact.saved_name == "Ana" and values_of(contact) == {"Plan": "Gold"}


def test_another_owners_contacts_are_never_touched(number, charlie, plan):
    theirs = whatsapp_services.session_create(owner=charlie, name="Charlie's")
    services.message_receive(session=theirs, msg=inbound(phone="5511988880001"))
    their_field = contacts.custom_field_create(owner=charlie, name="Plan", kind="text")
    other = Contact.objects.get(session=theirs)
    contacts_import(session=number, data=csv_bytes("phone,name,Plan", "5511988880001,Ana,Gold"))
    other.refresh_from_db()
    assert other.saved_name == "" and not other.field_values.exists()
    mine = Contact.objects.get(session=number)
    assert values_of(mine) == {"Plan": "Gold"}
    assert not ContactFieldValue.objects.filter(field=their_field).exists()


def _file_error(session, data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        contacts_import(session=session, data=data)
    field, code, _message = error_items(caught.value)[0]
    assert field == "file"
    return code


def test_a_file_over_the_size_limit_is_refused_whole(number, settings):
    settings.VBCRM_CONTACT_IMPORT_MAX_BYTES = 60
    assert _file_error(number, GOOD) == "too_large"
    assert not Contact.objects.exists()


def test_a_file_in_another_encoding_is_refused_whole(number):
    data = "name,phone\nJosé,5511988880001\n".encode("latin-1")
    assert _file_error(number, data) == "wrong_encoding"
    assert _file_error(number, "name,phone\nAna,5511988880001\n".encode("utf-16")) == (
        "wrong_encoding"
    )
    assert not Contact.objects.exists()


def test_a_file_without_a_phone_column_or_empty_is_refused(number):
    assert _file_error(number, csv_bytes("name,telephone", "Ana,5511988880001")) == (
        "no_phone_column"
    )
    assert _file_error(number, b"  \n") == "empty"


def test_a_byte_order_mark_and_semicolons_are_read(number):
    data = "\ufeffnome;phone;name\r\nx;+55 11 98888-0001;Ana\r\n".encode()
    report = contacts_import(session=number, data=data)
    assert report.created == 1 and Contact.objects.get().saved_name == "Ana"
    assert report.ignored_columns == [("nome", "no custom field has this name")]


def test_a_failure_while_writing_leaves_nothing_half_imported(number, plan, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ContactFieldValue.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        contacts_import(session=number, data=GOOD, default_country="55")
    assert not Contact.objects.exists()


def test_the_tags_column_tags_contacts_with_the_owners_tags(number, alice, charlie):
    vip = team.tag_create(session=number, name="VIP", color="green")
    theirs = Tag.objects.create(owner=charlie, name="Atacado")
    report = contacts_import(
        session=number,
        data=csv_bytes(
            "phone,name,tags",
            '5511988880001,Ana,"vip, Atacado"',
            "5511988880002,Bruno,atacado;VIP;vip",
            "5511988880003,Carla,",
            "5511988880004,Davi," + "x" * 50,
        ),
    )
    assert (report.created, len(report.refused)) == (3, 1)
    assert report.refused[0].line == 5 and "40" in report.refused[0].reason
    atacado = Tag.objects.get(owner=alice, name="Atacado")  # made for the owner, not reused
    assert atacado != theirs and not theirs.contacts.exists()
    tags_of = {c.phone: {t.name for t in c.tags.all()} for c in Contact.objects.all()}
    assert tags_of == {
        "5511988880001": {"VIP", "Atacado"},
        "5511988880002": {"VIP", "Atacado"},
        "5511988880003": set(),
    }
    assert vip.contacts.count() == 2
    # the same file again changes nothing; a file only adds tags, never removes them
    again = contacts_import(
        session=number,
        data=csv_bytes("phone,tags", '5511988880001,"VIP, Atacado"', "5511988880003,VIP"),
    )
    assert (again.updated, again.unchanged) == (1, 1)
    assert {t.name for t in Contact.objects.get(phone="5511988880003").tags.all()} == {"VIP"}
    assert Tag.objects.filter(owner=alice).count() == 2


def test_an_export_carries_the_tags_and_imports_back_without_a_change(number):
    contacts_import(session=number, data=csv_bytes("phone,tags", '5511988880001,"b, A"'))
    exported = "".join(contacts_csv_rows(session=number))
    assert ',5511988880001,,"A, b"' in exported.splitlines()[1]
    report = contacts_import(session=number, data=exported.encode())
    assert (report.updated, report.unchanged) == (0, 1)


def test_an_export_imports_back_without_a_change(number, plan, seats):
    services.message_receive(session=number, msg=inbound(phone="5511988880009"))
    contacts_import(
        session=number,
        data=GOOD + csv_bytes("=HYPERLINK(1),+55 11 98888-0007,Gold,-2"),
        default_country="55",
    )
    exported = "".join(contacts_csv_rows(session=number))
    lines = exported.lstrip("\ufeff").splitlines()
    assert lines[0] == "name,phone,whatsapp_name,tags,Plan,Seats"
    assert "Ana Souza,5511988880001,,,Gold,3" in lines
    assert ",5511988880009,Maria,,," in lines
    # a formula is written as text, and read back as it was
    assert "'=HYPERLINK(1),5511988880007,,,Gold,'-2" in lines
    report = contacts_import(session=number, data=exported.encode())
    assert (report.created, report.updated, report.unchanged, report.refused) == (0, 0, 5, [])
    assert Contact.objects.get(phone="5511988880007").saved_name == "=HYPERLINK(1)"


# --- Custom fields and their values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "choices", "typed", "stored"),
    [
        ("text", [], "  a   b ", "a b"),
        ("number", [], "1,5", "1.5"),
        ("number", [], "-3.250", "-3.25"),
        ("number", [], "100", "100"),
        ("date", [], "2024-02-29", "2024-02-29"),
        ("choice", ["Gold", "Silver"], "gold", "Gold"),
        ("number", [], "", ""),
    ],
)
def test_values_are_checked_and_stored_per_type(alice, kind, choices, typed, stored):
    field = contacts.custom_field_create(owner=alice, name="F", kind=kind, choices=choices)
    assert contacts.custom_value_clean(field, typed) == stored


@pytest.mark.parametrize(
    ("kind", "choices", "typed", "message"),
    [
        ("text", [], "x" * 501, "At most 500 characters."),
        ("text", [], "a\x00b", "must not contain NUL characters"),
        ("number", [], "abc", "F must be a number."),
        ("number", [], "NaN", "F must be a number."),
        ("number", [], "1.000,5", "F must be a number."),
        ("date", [], "2023-02-29", "F must be a date written YYYY-MM-DD."),
        ("date", [], "29/02/2024", "F must be a date written YYYY-MM-DD."),
        ("choice", ["Gold", "Silver"], "Bronze", "F must be one of: Gold, Silver."),
    ],
)
def test_values_of_the_wrong_type_are_refused(alice, kind, choices, typed, message):
    field = contacts.custom_field_create(owner=alice, name="F", kind=kind, choices=choices)
    with pytest.raises(ValidationError) as caught:
        contacts.custom_value_clean(field, typed)
    assert error_items(caught.value)[0][0] == "custom_fields.F"
    assert error_items(caught.value)[0][2] == message


@pytest.mark.parametrize(
    ("name", "kind", "choices", "field", "code"),
    [
        ("", "text", [], "name", "required"),
        ("Phone", "text", [], "name", "reserved"),
        ("plan", "text", [], "name", "duplicate"),
        ("Other", "colour", [], "kind", "invalid"),
        ("Other", "choice", ["", " "], "choices", "required"),
    ],
)
def test_field_definitions_are_checked(alice, plan, name, kind, choices, field, code):
    with pytest.raises(ValidationError) as caught:
        contacts.custom_field_create(owner=alice, name=name, kind=kind, choices=choices)
    assert error_items(caught.value)[0][:2] == (field, code)


def test_two_owners_may_name_fields_alike_and_deleting_one_drops_its_values(alice, charlie, number):
    mine = contacts.custom_field_create(owner=alice, name="Plan", kind="text")
    contacts.custom_field_create(owner=charlie, name="Plan", kind="text")
    contact = services.message_receive(session=number, msg=inbound()).conversation.contact
    contacts.contact_details_update(contact=contact, values={mine: "x"})
    assert ContactFieldValue.objects.count() == 1
    contacts.custom_field_delete(field=mine)
    assert not ContactFieldValue.objects.exists()
    assert CustomField.objects.count() == 1


def test_an_edit_checks_every_value_before_saving_any(alice, number, plan, seats):
    contact = services.message_receive(session=number, msg=inbound()).conversation.contact
    with pytest.raises(ValidationError) as caught:
        contacts.contact_details_update(
            contact=contact, saved_name="Ana", values={plan: "Gold", seats: "lots"}
        )
    assert [f for f, _c, _m in error_items(caught.value)] == ["custom_fields.Seats"]
    contact.refresh_from_db()
    assert contact.saved_name == "" and not contact.field_values.exists()
    contacts.contact_details_update(contact=contact, values={plan: "Gold", seats: "2"})
    assert values_of(contact) == {"Plan": "Gold", "Seats": "2"}
    contacts.contact_details_update(contact=contact, values={plan: ""})
    assert values_of(contact) == {"Seats": "2"}
