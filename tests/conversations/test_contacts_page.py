"""The contacts page: list, search and sort, one contact's details, CSV import and export,
custom field definitions, and who may see and do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import services
from conversations.models import Contact, CustomField
from conversations.services import contacts, team
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db

LIST = reverse("contacts:list")


def receive(number, phone: str, name: str, minutes_ago: int = 0):
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return services.message_receive(
        session=number, msg=inbound(phone=phone, push_name=name, timestamp=when)
    ).conversation


def names(response) -> list[str]:
    return [c.display_name for c in response.context["contacts"]]


@pytest.fixture
def people(number):
    receive(number, "5511988880001", "Ana", minutes_ago=30)
    receive(number, "5511988880002", "Bruno", minutes_ago=10)
    receive(number, "5511977770003", "Carla", minutes_ago=20)


def test_the_page_lists_the_contacts_of_the_numbers_the_user_works(
    client, people, alice, bob, charlie
):
    for user in (alice, bob):
        client.force_login(user)
        response = client.get(LIST)
        assert response.status_code == 200
        # latest message first
        assert names(response) == ["Bruno", "Carla", "Ana"]
    client.force_login(charlie)
    response = client.get(LIST)
    assert names(response) == [] and b"Bruno" not in response.content


def test_search_finds_by_name_or_phone_and_sorts_by_name(client, people, bob):
    client.force_login(bob)
    assert names(client.get(LIST, {"q": "carl"})) == ["Carla"]
    assert names(client.get(LIST, {"q": "+55 11 98888"})) == ["Bruno", "Ana"]
    assert names(client.get(LIST, {"q": "(11) 97777"})) == ["Carla"]
    assert names(client.get(LIST, {"sort": "name"})) == ["Ana", "Bruno", "Carla"]
    assert names(client.get(LIST, {"q": "nobody"})) == []


def test_the_tag_filter_lists_the_contacts_with_that_tag(client, people, number, bob):
    vip = team.tag_create(session=number, name="V<b>IP", color="green")
    team.contact_tags_set(contact=Contact.objects.get(push_name="Carla"), tag_ids=[vip.pk])
    client.force_login(bob)
    response = client.get(LIST, {"tag": vip.pk})
    assert names(response) == ["Carla"]
    body = response.content.decode()
    assert "V&lt;b&gt;IP" in body and "V<b>IP" not in body  # the option and the row's label
    assert names(client.get(LIST, {"tag": vip.pk, "q": "ana"})) == []
    assert len(names(client.get(LIST))) == 3


def test_htmx_gets_only_the_results(client, people, bob):
    client.force_login(bob)
    response = client.get(
        LIST, {"q": "ana"}, headers={"HX-Request": "true", "HX-Target": "contact-results"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Ana" in body and "<html" not in body and "Bruno" not in body


def test_the_list_costs_the_same_queries_for_many_contacts(
    client, number, bob, django_assert_max_num_queries
):
    for i in range(30):
        receive(number, f"55119888800{i:02d}", f"P{i}")
    client.force_login(bob)
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert len(response.context["contacts"]) == 30


def test_a_number_filter_and_groups_left_out(client, number, alice, people):
    other = whatsapp_services.session_create(owner=alice, name="Sales")
    receive(other, "5511966660009", "Sales Dan")
    services.message_receive(
        session=number,
        msg=inbound(chat="120363000000000001@g.us", text="hi group"),
    )
    client.force_login(alice)
    assert names(client.get(LIST, {"number": other.pk})) == ["Sales Dan"]
    assert len(names(client.get(LIST))) == 4


def test_names_are_escaped_everywhere(client, number, alice):
    conversation = receive(number, "5511988880001", "<b>Ana</b>")
    contacts.custom_field_create(owner=alice, name="<i>Plan</i>", kind="text")
    client.force_login(alice)
    body = client.get(LIST).content.decode()
    assert "&lt;b&gt;Ana&lt;/b&gt;" in body and "<b>Ana</b>" not in body
    detail = client.get(reverse("contacts:detail", args=[conversation.contact_id]))
    text = detail.content.decode()
    assert "&lt;i&gt;Plan&lt;/i&gt;" in text and "<i>Plan</i>" not in text
    fields = client.get(reverse("contacts:fields")).content.decode()
    assert "&lt;i&gt;Plan&lt;/i&gt;" in fields and "<i>Plan</i>" not in fields


# --- One contact --------------------------------------------------------------------------


def test_the_detail_shows_fields_and_conversations_on_every_number(client, number, alice, bob):
    conversation = receive(number, "5511988880001", "Ana")
    other = whatsapp_services.session_create(owner=alice, name="Sales")
    elsewhere = receive(other, "5511988880001", "Ana")
    contacts.custom_field_create(owner=alice, name="Plan", kind="choice", choices=["Gold"])
    client.force_login(alice)
    response = client.get(reverse("contacts:detail", args=[conversation.contact_id]))
    assert response.status_code == 200
    assert [c.pk for c in response.context["conversations"]] == [elsewhere.pk, conversation.pk]
    assert 'name="field_' in response.content.decode()
    # bob works only Support: the conversation on Sales is not his to see
    client.force_login(bob)
    response = client.get(reverse("contacts:detail", args=[conversation.contact_id]))
    assert [c.pk for c in response.context["conversations"]] == [conversation.pk]
    assert client.get(reverse("contacts:detail", args=[elsewhere.contact_id])).status_code == 404


def test_an_agent_edits_the_name_notes_and_fields(client, number, alice, bob):
    contact = receive(number, "5511988880001", "Ana").contact
    seats = contacts.custom_field_create(owner=alice, name="Seats", kind="number")
    born = contacts.custom_field_create(owner=alice, name="Born", kind="date")
    client.force_login(bob)
    url = reverse("contacts:detail", args=[contact.pk])
    response = client.post(
        url,
        {
            "saved_name": "Ana S.",
            "notes": "VIP",
            f"field_{seats.pk}": "2,5",
            f"field_{born.pk}": "",
        },
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.saved_name == "Ana S." and contact.notes == "VIP"
    assert {v.field_id: v.value for v in contact.field_values.all()} == {seats.pk: "2.5"}

    response = client.post(url, {"saved_name": "X", f"field_{born.pk}": "31/12/1990"})
    assert response.status_code == 400
    assert "Born must be a date written YYYY-MM-DD." in response.content.decode()
    contact.refresh_from_db()
    assert contact.saved_name == "Ana S."


def test_outsiders_neither_see_nor_edit_a_contact(client, number, charlie):
    contact = receive(number, "5511988880001", "Ana").contact
    client.force_login(charlie)
    url = reverse("contacts:detail", args=[contact.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"saved_name": "Hacked"}).status_code == 404
    contact.refresh_from_db()
    assert contact.saved_name == ""


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "contacts:list", []),
        ("get", "contacts:detail", [1]),
        ("post", "contacts:import", []),
        ("get", "contacts:export", []),
        ("get", "contacts:fields", []),
        ("post", "contacts:field_edit", [1]),
        ("post", "contacts:field_delete", [1]),
    ],
)
def test_every_contacts_page_needs_a_login(client, method, name, args):
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- CSV -------------------------------------------------------------------------------------


def upload(text: str | bytes, name: str = "contacts.csv") -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_an_agent_imports_a_file_and_reads_the_report(client, number, bob):
    client.force_login(bob)
    response = client.post(
        reverse("contacts:import"),
        {
            "number": number.pk,
            "file": upload("name,phone\nAna,+5511988880001\nBad,123\n<b>X</b>,+5511988880001\n"),
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 contact added, 0 updated, 0 already up to date, 2 rows refused." in body
    assert "not a valid phone number" in body and "the same phone as line 2" in body
    assert Contact.objects.get().saved_name == "Ana"


def test_an_outsider_cannot_import_into_or_export_a_number(client, number, charlie):
    receive(number, "5511988880001", "Ana")
    client.force_login(charlie)
    response = client.post(
        reverse("contacts:import"),
        {"number": number.pk, "file": upload("name,phone\nEvil,+5511988880001\n")},
    )
    assert response.status_code == 400
    assert "Pick the number the contacts write to." in response.content.decode()
    assert Contact.objects.get().saved_name == ""
    assert client.get(reverse("contacts:export"), {"number": number.pk}).status_code == 404


def test_a_large_or_mis_encoded_file_is_refused_with_a_message(client, number, bob, settings):
    client.force_login(bob)
    settings.VBCRM_CONTACT_IMPORT_MAX_BYTES = 1024
    response = client.post(
        reverse("contacts:import"),
        {"number": number.pk, "file": upload("name,phone\n" + "Ana,+5511988880001\n" * 100)},
    )
    assert response.status_code == 400
    assert "The file is larger than 1 KB" in response.content.decode()
    response = client.post(
        reverse("contacts:import"),
        {"number": number.pk, "file": upload("name,phone\nJosé,5511988880001\n".encode("cp1252"))},
    )
    assert response.status_code == 400
    assert "The file is not UTF-8 text." in response.content.decode()
    assert not Contact.objects.exists()


def test_the_export_downloads_the_numbers_contacts(client, number, bob, alice):
    receive(number, "5511988880001", "Ana")
    contacts.custom_field_create(owner=alice, name="Plan", kind="text")
    client.force_login(bob)
    response = client.get(reverse("contacts:export"), {"number": number.pk})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="contacts-support.csv"'
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines() == [
        "\ufeffname,phone,whatsapp_name,tags,Plan",
        ",5511988880001,Ana,,",
    ]


# --- Custom field definitions ---------------------------------------------------------------


def test_an_owner_adds_edits_and_deletes_fields(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("contacts:fields"), {"name": "Plan", "kind": "choice", "choices": "Gold\nSilver\n"}
    )
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert (field.owner, field.kind, field.choices) == (alice, "choice", ["Gold", "Silver"])
    response = client.post(reverse("contacts:fields"), {"name": "plan", "kind": "text"})
    assert response.status_code == 400
    assert "You already have a field with this name." in response.content.decode()
    client.post(
        reverse("contacts:field_edit", args=[field.pk]),
        {"name": "Tier", "kind": "choice", "choices": "A\nB"},
    )
    field.refresh_from_db()
    assert (field.name, field.choices) == ("Tier", ["A", "B"])
    client.post(reverse("contacts:field_delete", args=[field.pk]))
    assert not CustomField.objects.exists()


def test_nobody_else_edits_or_deletes_an_owners_field(client, alice, bob):
    field = contacts.custom_field_create(owner=alice, name="Plan", kind="text")
    client.force_login(bob)
    edit = reverse("contacts:field_edit", args=[field.pk])
    assert client.post(edit, {"name": "Mine", "kind": "text"}).status_code == 404
    assert client.post(reverse("contacts:field_delete", args=[field.pk])).status_code == 404
    assert client.get(reverse("contacts:fields")).context["custom_fields"] == []
    field.refresh_from_db()
    assert field.name == "Plan"


def test_admin_manages_field_definitions(admin_client, alice):
    response = admin_client.post(
        "/admin/conversations/customfield/add/",
        {
            "owner": alice.pk,
            "name": "Plan",
            "kind": "choice",
            "position": 0,
            "choices_text": "Gold",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    field = CustomField.objects.get()
    assert field.choices == ["Gold"]
    response = admin_client.post(
        "/admin/conversations/customfield/add/",
        {"owner": alice.pk, "name": "phone", "kind": "text", "position": 0},
    )
    assert response.status_code == 200 and "is a column of its own" in response.content.decode()
    change = f"/admin/conversations/customfield/{field.pk}/change/"
    assert admin_client.get(change).status_code == 200
    response = admin_client.post(
        change, {"name": "Tier", "kind": "choice", "position": 2, "choices_text": "A\nB"}
    )
    assert response.status_code == 302
    field.refresh_from_db()
    assert (field.name, field.choices, field.position) == ("Tier", ["A", "B"], 2)
    assert admin_client.get("/admin/conversations/customfield/").status_code == 200
