"""Templates: variables (each, pt and en, greetings by the number's clock), refusal of
unknown ones when saved (page, API, admin), who sees and changes which template, and a
template's file going out with the filled text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conversations import services
from conversations.models import Message, QuickReply
from conversations.services.variables import (
    VARIABLES,
    number_zone,
    variables_check,
    variables_render,
)
from vbcrm.services import token_create
from whatsapp import services as whatsapp_services
from whatsapp.models import NumberSettings

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4 a tiny file"


def _pdf(name: str = "price list.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, "application/pdf")


def _api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t').plain}")


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _render(text: str, conversation, agent=None, now: datetime | None = None) -> str:
    return variables_render(text, conversation=conversation, agent=agent, now=now)


@pytest.fixture
def other_number(charlie):
    """A number bob and alice have nothing to do with."""
    return whatsapp_services.session_create(owner=charlie, name="Elsewhere")


# --- variables --------------------------------------------------------------------------------


def test_every_variable_in_portuguese_and_english(conversation, bob):
    bob.first_name, bob.last_name = "Bob", "Silva"
    bob.save()
    session = conversation.session
    session.phone_number = "5511900000001"
    session.save()
    pt = _render("{{nome}} {{agente}} {{numero}} {{protocolo}}", conversation, bob)
    en = _render("{{name}} {{agent}} {{number}} {{protocol}}", conversation, bob)
    expected = f"Maria Bob Silva 5511900000001 {conversation.pk}"
    assert pt == en == expected
    # accents, capitals and spaces inside the braces are tolerated
    assert _render("{{ Nome }}/{{número}}", conversation, bob) == "Maria/5511900000001"


def test_the_contact_s_saved_name_wins_and_values_are_plain_text(conversation):
    services.contact_update(contact=conversation.contact, saved_name="<b>Ana</b> & Cia")
    conversation.refresh_from_db()
    assert _render("Olá {{nome}}", conversation) == "Olá <b>Ana</b> & Cia"


def test_agent_falls_back_to_the_username_and_number_to_its_name(conversation, bob):
    assert _render("{{agente}}|{{numero}}", conversation, bob) == "bob|Support"
    # with no agent (an automatic message) the name is empty
    assert _render("[{{agent}}]", conversation, None) == "[]"


def test_text_without_variables_is_unchanged(conversation):
    assert _render("Preço: {R$ 10}", conversation) == "Preço: {R$ 10}"


def _at(zone: str, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def number_zone_set(conversation, zone: str) -> None:
    """The number's time zone, as its owner sets it on the automatic replies page."""
    NumberSettings.objects.filter(session_id=conversation.session_id).update(time_zone=zone)


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "Asia/Tokyo"])
@pytest.mark.parametrize(
    ("hour", "minute", "pt", "en"),
    [
        (4, 59, "boa noite", "good evening"),
        (5, 0, "bom dia", "good morning"),
        (11, 59, "bom dia", "good morning"),
        (12, 0, "boa tarde", "good afternoon"),
        (17, 59, "boa tarde", "good afternoon"),
        (18, 0, "boa noite", "good evening"),
        (0, 0, "boa noite", "good evening"),
    ],
)
def test_the_greeting_follows_the_number_s_clock(conversation, zone, hour, minute, pt, en):
    number_zone_set(conversation, zone)
    assert number_zone(conversation.session_id) == ZoneInfo(zone)
    now = _at(zone, hour, minute)  # that local time, given as UTC
    assert _render("Olá, {{saudacao}}", conversation, now=now) == f"Olá, {pt}"
    assert _render("Hi, {{greeting}}", conversation, now=now) == f"Hi, {en}"


def test_one_instant_greets_differently_in_two_zones(conversation):
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 11:00 in São Paulo, 23:00 in Tokyo
    number_zone_set(conversation, "America/Sao_Paulo")
    assert _render("{{saudacao}}", conversation, now=now) == "Bom dia"
    number_zone_set(conversation, "Asia/Tokyo")
    assert _render("{{saudacao}}", conversation, now=now) == "Boa noite"


def test_a_greeting_starting_a_sentence_gets_a_capital(conversation):
    number_zone_set(conversation, "America/Sao_Paulo")
    now = _at("America/Sao_Paulo", 9, 0)
    text = "{{saudacao}}, {{nome}}! {{ saudação }} de novo.\n{{greeting}} and {{greeting}}"
    assert _render(text, conversation, now=now) == (
        "Bom dia, Maria! Bom dia de novo.\nGood morning and good morning"
    )


def test_known_names_pass_the_check():
    for name in VARIABLES:
        variables_check("x {{" + name + "}} y")
    variables_check("no variables, {single} braces are text")


def test_unknown_variables_are_refused_by_name_on_the_field():
    with pytest.raises(ValidationError) as caught:
        variables_check("Oi {{nome}}, {{cpf}} e {{ endereco }} e {{cpf}}", "body")
    errors = caught.value.message_dict
    assert list(errors) == ["body"]
    assert "{{cpf}}" in errors["body"][0] and "{{endereco}}" in errors["body"][0]
    assert errors["body"][0].count("{{cpf}}") == 1
    assert caught.value.error_dict["body"][0].code == "unknown_variable"


@pytest.mark.parametrize("text", ["Oi {{nome}", "Oi {nome}}", "{{}}", "{{ }}", "a {{ b"])
def test_malformed_braces_are_refused(text):
    with pytest.raises(ValidationError) as caught:
        variables_check(text)
    codes = {e.code for e in caught.value.error_dict["text"]}
    assert codes <= {"malformed_variable", "unknown_variable"} and codes


# --- saving: refused whole, on the field --------------------------------------------------------


def test_the_page_refuses_unknown_variables_on_the_field_and_keeps_nothing(alice):
    client = _as(alice)
    response = client.post(
        "/conversations/templates/",
        {"shortcut": "oi", "text": "Olá {{cliente}}", "file": _pdf()},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "{{cliente}}" in body and 'aria-invalid="true"' in body
    assert "Olá {{cliente}}" in body  # what was typed is kept in the form
    assert not QuickReply.objects.exists()
    assert not default_storage.exists("templates")  # the file was not kept either


def test_the_page_refuses_an_edit_with_unknown_variables_and_keeps_the_old_text(alice):
    template = services.quick_reply_create(owner=alice, shortcut="oi", text="Olá {{nome}}")
    client = _as(alice)
    response = client.post(
        f"/conversations/templates/{template.pk}/", {"shortcut": "novo", "text": "{{foo}}"}
    )
    assert response.status_code == 400 and "{{foo}}" in response.content.decode()
    template.refresh_from_db()
    assert (template.shortcut, template.text) == ("oi", "Olá {{nome}}")


def test_the_api_refuses_unknown_variables_on_the_text(alice):
    response = _api(alice).post(
        "/api/whatsapp/templates",
        json.dumps({"shortcut": "oi", "text": "{{nome}} {{xyz}}"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail[0]["field"] == "text" and detail[0]["code"] == "unknown_variable"
    assert "{{xyz}}" in detail[0]["message"]
    assert not QuickReply.objects.exists()


def test_the_api_refuses_an_edit_with_unknown_variables_and_keeps_the_template(alice):
    template = services.quick_reply_create(owner=alice, shortcut="oi", text="Oi {{nome}}")
    response = _api(alice).put(
        f"/api/whatsapp/templates/{template.pk}",
        json.dumps({"shortcut": "novo", "text": "Oi {{nome}"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["code"] == "malformed_variable"
    template.refresh_from_db()
    assert (template.shortcut, template.text) == ("oi", "Oi {{nome}}")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-root")


def test_admin_refuses_unknown_variables_and_saves_through_the_services(staff, alice, number):
    client = _as(staff)
    response = client.post(
        "/admin/conversations/quickreply/add/",
        {"owner": alice.pk, "session": number.pk, "shortcut": "oi", "text": "{{nada}}"},
    )
    assert response.status_code == 200 and "{{nada}}" in response.content.decode()
    assert not QuickReply.objects.exists()
    response = client.post(
        "/admin/conversations/quickreply/add/",
        {"owner": alice.pk, "session": number.pk, "shortcut": "Oi", "text": "{{saudacao}}!"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    template = QuickReply.objects.get()
    assert (template.shortcut, template.session, template.owner) == ("oi", number, alice)
    # edited there too, by the same rule
    response = client.post(
        f"/admin/conversations/quickreply/{template.pk}/change/",
        {"shortcut": "oi", "text": "{{ zzz }}"},
    )
    assert response.status_code == 200 and "{{zzz}}" in response.content.decode()
    template.refresh_from_db()
    assert template.text == "{{saudacao}}!"


def test_admin_links_the_file_through_the_authorised_view(staff, alice):
    template = services.quick_reply_create(owner=alice, shortcut="t", text="", upload=_pdf())
    client = _as(staff)
    page = client.get(f"/admin/conversations/quickreply/{template.pk}/change/").content.decode()
    link = f"/conversations/templates/{template.pk}/file/?download=1"
    assert f'href="{link}"' in page and "price list.pdf" in page
    assert b"".join(client.get(link).streaming_content) == PDF


def test_admin_refuses_a_shared_template_of_someone_else_s_number(staff, bob, number):
    response = _as(staff).post(
        "/admin/conversations/quickreply/add/",
        {"owner": bob.pk, "session": number.pk, "shortcut": "oi", "text": "x"},
    )
    assert response.status_code == 200
    assert not QuickReply.objects.exists()


def test_a_template_needs_text_or_a_file(alice):
    with pytest.raises(ValidationError):
        services.quick_reply_create(owner=alice, shortcut="vazio", text="  ")
    template = services.quick_reply_create(owner=alice, shortcut="tabela", text="", upload=_pdf())
    assert template.file_name == "price list.pdf" and template.mime_type == "application/pdf"
    with pytest.raises(ValidationError):
        services.quick_reply_update(
            quick_reply=template, shortcut="tabela", text="", remove_file=True
        )


def test_a_file_over_the_upload_limit_is_refused(settings, alice):
    settings.VBCRM_MAX_UPLOAD_BYTES = 10
    with pytest.raises(ValidationError) as caught:
        services.quick_reply_create(owner=alice, shortcut="big", text="x", upload=_pdf())
    assert caught.value.error_dict["file"][0].code == "too_large"
    assert not QuickReply.objects.exists()


def test_shortcuts_are_unique_per_owner_and_per_number(alice, number):
    services.quick_reply_create(owner=alice, shortcut="oi", text="mine")
    # the same shortcut shared on a number is another template
    services.quick_reply_create(owner=alice, shortcut="oi", text="team", session=number)
    with pytest.raises(ValidationError):
        services.quick_reply_create(owner=alice, shortcut="oi", text="again", session=number)
    with pytest.raises(ValidationError):
        services.quick_reply_create(owner=alice, shortcut="OI", text="again")
    assert QuickReply.objects.count() == 2


# --- who sees and changes what ---------------------------------------------------------------


@pytest.fixture
def templates(alice, bob, number, other_number, charlie):
    return {
        "alice_personal": services.quick_reply_create(
            owner=alice, shortcut="minha", text="Só da Alice"
        ),
        "shared": services.quick_reply_create(
            owner=alice, shortcut="equipe", text="Oi {{nome}}", session=number, upload=_pdf()
        ),
        "bob_personal": services.quick_reply_create(owner=bob, shortcut="bob", text="Do Bob"),
        "elsewhere": services.quick_reply_create(
            owner=charlie, shortcut="fora", text="Outro número", session=other_number
        ),
    }


def _composer_templates(client: Client, conversation) -> list[dict]:
    body = client.get(f"/conversations/{conversation.pk}/").content.decode()
    start = body.index('id="vb-quick-replies"')
    raw = body[body.index(">", start) + 1 : body.index("</script>", start)]
    return json.loads(raw)


def test_the_composer_offers_personal_and_this_number_s_shared_templates(
    conversation, alice, bob, templates
):
    for_bob = _composer_templates(_as(bob), conversation)
    assert [(t["shortcut"], t["shared"]) for t in for_bob] == [("bob", False), ("equipe", True)]
    assert for_bob[1]["file_name"] == "price list.pdf"
    for_alice = _composer_templates(_as(alice), conversation)
    assert [t["shortcut"] for t in for_alice] == ["equipe", "minha"]


def test_agents_use_shared_templates_but_cannot_change_them(bob, templates):
    shared = templates["shared"]
    client = _as(bob)
    page = client.get("/conversations/templates/").content.decode()
    assert "/equipe" in page and "Só da Alice" not in page and "Outro número" not in page
    assert f'action="/conversations/templates/{shared.pk}/"' not in page  # no edit form
    assert (
        client.post(f"/conversations/templates/{shared.pk}/", {"shortcut": "x"}).status_code == 404
    )
    assert client.post(f"/conversations/templates/{shared.pk}/delete/").status_code == 404
    api = _api(bob)
    change = api.put(
        f"/api/whatsapp/templates/{shared.pk}",
        json.dumps({"shortcut": "x", "text": "y"}),
        content_type="application/json",
    )
    assert change.status_code == 403
    assert api.delete(f"/api/whatsapp/templates/{shared.pk}").status_code == 403
    shared.refresh_from_db()
    assert shared.shortcut == "equipe"
    listed = {t["shortcut"]: t["can_edit"] for t in api.get("/api/whatsapp/templates").json()}
    assert listed == {"bob": True, "equipe": False}


def test_only_the_number_s_owner_shares_templates_on_it(bob, number):
    page = _as(bob).post(
        "/conversations/templates/", {"shortcut": "x", "text": "y", "session": number.pk}
    )
    assert page.status_code == 400 and "owner" in page.content.decode()
    api = _api(bob).post(
        "/api/whatsapp/templates",
        json.dumps({"shortcut": "x", "text": "y", "number": number.pk}),
        content_type="application/json",
    )
    assert api.status_code == 403
    with pytest.raises(ValidationError):
        services.quick_reply_create(owner=bob, shortcut="x", text="y", session=number)
    assert not QuickReply.objects.exists()


def test_personal_templates_are_their_owner_s_alone(alice, bob, conversation, templates):
    mine = templates["alice_personal"]
    client = _as(bob)
    assert client.post(f"/conversations/templates/{mine.pk}/delete/").status_code == 404
    preview = f"/conversations/{conversation.pk}/template-preview/?template={mine.pk}"
    assert client.get(preview).status_code == 404
    api = _api(bob)
    render = f"/api/whatsapp/conversations/{conversation.pk}/templates/{mine.pk}/render"
    assert api.get(render).status_code == 404
    assert _api(alice).get(render).json()["text"] == "Só da Alice"


def test_outsiders_get_nothing(charlie, conversation, templates):
    shared = templates["shared"]
    client = _as(charlie)
    assert client.get(f"/conversations/templates/{shared.pk}/file/").status_code == 404
    preview = f"/conversations/{conversation.pk}/template-preview/?template={shared.pk}"
    assert client.get(preview).status_code == 404
    api = _api(charlie)
    assert api.get(f"/api/whatsapp/templates/{shared.pk}/file").status_code == 404
    render = f"/api/whatsapp/conversations/{conversation.pk}/templates/{shared.pk}/render"
    assert api.get(render).status_code == 404
    assert [t["shortcut"] for t in api.get("/api/whatsapp/templates").json()] == ["fora"]
    # charlie's own template shared on his number is not usable in alice's conversation
    elsewhere = templates["elsewhere"]
    bob_preview = f"/conversations/{conversation.pk}/template-preview/?template={elsewhere.pk}"
    assert client.get(bob_preview).status_code == 404


def test_the_shared_file_is_served_to_the_number_s_agents_only_through_the_view(bob, templates):
    shared = templates["shared"]
    response = _as(bob).get(f"/conversations/templates/{shared.pk}/file/?download=1")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response["Content-Disposition"]


# --- preview and sending ----------------------------------------------------------------------


def test_the_preview_fills_the_variables_for_this_conversation(bob, conversation, templates):
    shared = templates["shared"]
    response = _as(bob).get(
        f"/conversations/{conversation.pk}/template-preview/?template={shared.pk}"
    )
    body = response.json()
    assert body["text"] == "Oi Maria"
    assert body["file"]["name"] == "price list.pdf"
    assert body["file"]["url"] == f"/conversations/templates/{shared.pk}/file/"


def test_a_template_with_a_file_sends_the_file_with_the_text_as_caption(
    bob, conversation, templates
):
    shared = templates["shared"]
    response = _as(bob).post(
        f"/conversations/{conversation.pk}/send/",
        {"text": "Oi Maria, segue a tabela", "template": shared.pk, "client_key": "k1"},
    )
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["message"]["id"])
    assert message.kind == Message.Kind.DOCUMENT
    assert message.body == "Oi Maria, segue a tabela"
    assert message.file_name == "price list.pdf" and message.status == Message.Status.PENDING
    assert message.media.read() == PDF
    # the message keeps its own copy: deleting the template leaves it whole
    assert message.media.name != shared.file.name
    services.quick_reply_delete(quick_reply=shared)
    message.media.open()
    assert message.media.read() == PDF


def test_an_own_file_wins_over_the_template_s(bob, conversation, templates):
    response = _as(bob).post(
        f"/conversations/{conversation.pk}/send/",
        {
            "text": "foto",
            "template": templates["shared"].pk,
            "file": SimpleUploadedFile("a.png", b"\x89PNG....", "image/png"),
        },
    )
    assert response.status_code == 201
    assert Message.objects.get(body="foto").file_name == "a.png"


def test_sending_someone_else_s_template_is_refused(bob, conversation, templates):
    response = _as(bob).post(
        f"/conversations/{conversation.pk}/send/",
        {"text": "x", "template": templates["alice_personal"].pk},
    )
    assert response.status_code == 400
    assert not Message.objects.filter(body="x").exists()


def test_the_api_sends_a_template_filled_and_with_its_file(bob, conversation, templates):
    shared = templates["shared"]
    response = _api(bob).post(
        f"/api/whatsapp/conversations/{conversation.pk}/templates/{shared.pk}/send",
        "{}",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="once",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["body"] == "Oi Maria" and body["kind"] == "document"
    again = _api(bob).post(
        f"/api/whatsapp/conversations/{conversation.pk}/templates/{shared.pk}/send",
        "{}",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="once",
    )
    assert again.json()["id"] == body["id"]


def test_the_send_rate_limit_applies_to_templates(settings, bob, conversation, templates):
    settings.VBCRM_SEND_RATE_PER_MINUTE = 1
    template = templates["bob_personal"]
    url = f"/api/whatsapp/conversations/{conversation.pk}/templates/{template.pk}/send"
    api = _api(bob)
    assert api.post(url, "{}", content_type="application/json").status_code == 201
    refused = api.post(url, "{}", content_type="application/json")
    assert refused.status_code == 429 and refused["Retry-After"]


def test_the_api_manages_a_template_and_its_file(alice, number, django_capture_on_commit_callbacks):
    api = _api(alice)
    made = api.post(
        "/api/whatsapp/templates",
        json.dumps({"shortcut": "/Boas", "text": "{{saudacao}}!", "number": number.pk}),
        content_type="application/json",
    )
    assert made.status_code == 201
    template = made.json()
    assert (template["shortcut"], template["number"], template["can_edit"]) == (
        "boas",
        number.pk,
        True,
    )
    tid = template["id"]
    taken = api.post(
        "/api/whatsapp/templates",
        json.dumps({"shortcut": "boas", "text": "x", "number": number.pk}),
        content_type="application/json",
    )
    assert taken.status_code == 409
    with_file = api.post(f"/api/whatsapp/templates/{tid}/file", {"file": _pdf("menu.pdf")})
    assert with_file.status_code == 200 and with_file.json()["file"]["name"] == "menu.pdf"
    download = api.get(with_file.json()["file"]["url"])
    assert b"".join(download.streaming_content) == PDF
    stored = QuickReply.objects.get(pk=tid).file.name
    with django_capture_on_commit_callbacks(execute=True):
        removed = api.delete(f"/api/whatsapp/templates/{tid}/file")
    assert removed.json()["file"] is None
    assert not default_storage.exists(stored)
    assert api.delete(f"/api/whatsapp/templates/{tid}").status_code == 204
    assert not QuickReply.objects.exists()


def test_templates_with_files_leave_no_file_behind_when_deleted(
    alice, django_capture_on_commit_callbacks
):
    template = services.quick_reply_create(owner=alice, shortcut="t", text="", upload=_pdf())
    name = template.file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        _as(alice).post(f"/conversations/templates/{template.pk}/delete/")
    assert not QuickReply.objects.exists() and not default_storage.exists(name)
