"""The list's rows and the thread's messages are Jinja2 templates (conversations/jinja.py)
that replaced Django templates: for the same rows they must give the same bytes. The
Django templates they replaced are kept here (django_fragments/) and rendered side by
side, over rows of every shape a fragment shows, in both languages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Engine
from django.template.backends.django import get_installed_libraries
from django.test import RequestFactory
from django.utils import timezone, translation

from conversations import jinja, selectors
from conversations import services as conversation_services
from conversations.models import Contact, Conversation, Message
from conversations.selectors import ConversationFilters
from conversations.services import team
from conversations.views import _syslines
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = pytest.mark.django_db

LANGS = ["en", "pt-br"]

REFERENCE = Engine(
    dirs=[str(Path(__file__).parent / "django_fragments"), str(settings.BASE_DIR / "templates")],
    libraries=get_installed_libraries(),
)


def _django(name: str, context: dict) -> str:
    return REFERENCE.get_template(name).render(Context(context))


@pytest.fixture
def shapes(number, alice, bob, settings, tmp_path):
    """A conversation holding a message of every shape, and list rows of every kind."""
    settings.MEDIA_ROOT = str(tmp_path)
    first = conversation_services.message_receive(
        session=number, msg=inbound(text="hi <b>\"there\"</b> & 'you'\nsecond line")
    )
    conversation = first.conversation
    Message.objects.filter(pk=first.pk).update(sender_name="")
    conversation_services.conversation_assign(conversation=conversation, assignee=bob)
    base = dict(conversation=conversation, wa_id="x", status=Message.Status.RECEIVED)
    inb = dict(base, direction=Message.Direction.INBOUND)
    out = dict(base, direction=Message.Direction.OUTBOUND, status=Message.Status.SENT)
    old = timezone.now() - timedelta(days=3)
    rows = [
        dict(inb, body="named", sender_name="Zé <Carioca>"),
        dict(inb, body="by jid", sender_jid="5511988887777@s.whatsapp.net"),
        dict(inb, body="by lid", sender_jid="1234567:3@lid"),
        dict(inb, body="yesterday", wa_timestamp=timezone.now() - timedelta(days=1)),
        dict(inb, body="days ago", wa_timestamp=old),
        dict(out, body="agent's", sent_by=alice, status=Message.Status.DELIVERED),
        dict(out, body="read", sent_by=alice, status=Message.Status.READ),
        dict(out, body="pending", status=Message.Status.PENDING),
        dict(out, body="failed", status=Message.Status.FAILED, error="Number <gone> & 'out'"),
        dict(out, body="failed bare", status=Message.Status.FAILED),
        dict(out, body="from the phone"),
        dict(
            base,
            direction=Message.Direction.NOTE,
            status=Message.Status.NOTE,
            body="psst",
            sent_by=bob,
        ),
        *[
            dict(out, body=f"auto {reason}", automatic=True, auto_reason=reason)
            for reason in ("greeting", "away", "keyword", "close", "")
        ],
        dict(inb, body="quoting", reply_to_id=first.pk),
        dict(inb, body="dangling", quoted_wa_id="NOT-STORED"),
        dict(
            inb,
            kind=Message.Kind.LOCATION,
            latitude=-22.9,
            longitude=-43.2,
            location_name="Rio <RJ>",
        ),
        dict(inb, kind=Message.Kind.LOCATION),
        dict(
            inb,
            kind=Message.Kind.CONTACT,
            body="BEGIN:VCARD\nFN:Ana & Bia\nTEL:+55 11 98888-0001\nEND:VCARD",
        ),
        dict(inb, kind=Message.Kind.CONTACT, body=""),
        dict(inb, kind=Message.Kind.OTHER),
        dict(inb, kind=Message.Kind.OTHER, body="unknown <x>"),
        dict(inb, kind=Message.Kind.IMAGE, media_status="downloading"),
        dict(inb, kind=Message.Kind.VIDEO, media_status="failed"),
        dict(
            inb,
            kind=Message.Kind.DOCUMENT,
            media_link="https://old.example/f?a=1&b=2",
            file_name='a"b.pdf',
        ),
        dict(inb, kind=Message.Kind.AUDIO, media_link="https://old.example/a"),
        dict(inb, kind=Message.Kind.STICKER),
    ]
    for kind, name in [
        (Message.Kind.IMAGE, ""),
        (Message.Kind.IMAGE, "photo's.jpg"),
        (Message.Kind.STICKER, ""),
        (Message.Kind.VIDEO, ""),
        (Message.Kind.AUDIO, ""),
        (Message.Kind.VOICE, ""),
        (Message.Kind.DOCUMENT, ""),
        (Message.Kind.DOCUMENT, "report <final>.pdf"),
    ]:
        rows.append(
            dict(
                inb,
                kind=kind,
                media="f.bin",
                media_status="ready",
                file_name=name,
                file_size=123456,
                body="a caption\nwith <two> lines" if name else "",
            )
        )
    for i, row in enumerate(rows):
        Message.objects.create(**{**row, "wa_id": f"shape-{i}"})
    conversation_services.conversation_assign(conversation=conversation, assignee=None)

    # Other rows of the list: a group with a picture, unread, closed, in a queue, tagged.
    group = Contact.objects.create(
        session=number,
        jid="1203630@g.us",
        is_group=True,
        group_subject="Team & <co>",
        group_picture="p.jpg",
        group_picture_id="pic 1",
    )
    Conversation.objects.create(
        session=number,
        contact=group,
        unread_count=12,
        last_message_at=old,
        last_message_preview="📍",
        status=Conversation.Status.CLOSED,
    )
    quiet = Contact.objects.create(
        session=number, jid="5511977776666@s.whatsapp.net", push_name="O'Brien"
    )
    yesterday = Conversation.objects.create(
        session=number,
        contact=quiet,
        unread_count=1,
        assigned_to=alice,
        last_message_at=timezone.now() - timedelta(days=1),
        last_message_preview="<hi>",
        status=Conversation.Status.PENDING,
    )
    tag = team.tag_create(session=number, name="VIP & <co>", color="red")
    other = team.tag_create(session=number, name="later", color="blue")
    team.conversation_tags_set(conversation=yesterday, tag_ids=[tag.pk])
    team.contact_tags_set(contact=quiet, tag_ids=[tag.pk, other.pk])
    return conversation


def _request(user, **query):
    request = RequestFactory().get("/", query)
    request.user = user
    return request


@pytest.mark.parametrize("lang", LANGS)
def test_list_rows_are_the_django_templates_bytes(shapes, alice, lang):
    for before_id, has_more in [("", True), ("", False), ("7", False)]:
        request = _request(alice, **({"before_id": before_id} if before_id else {}))
        rows = selectors.conversation_list(user=alice, limit=50)
        assert len(rows) == 3
        context = {
            "conversations": rows,
            "list_has_more": has_more,
            "filters": ConversationFilters(),
            "request": request,
        }
        with translation.override(lang):
            ours = jinja.render("conversations/_conversation_rows.html", context)
            theirs = _django("conversations/_conversation_rows.html", context)
        assert ours == theirs
    assert 'class="label tag-red">VIP &amp; &lt;co&gt;</span>' in ours
    assert "O&#x27;Brien" in ours


@pytest.mark.parametrize("lang", LANGS)
def test_empty_lists_are_the_django_templates_bytes(alice, number, lang):
    for filters in (ConversationFilters(), ConversationFilters(status="open")):
        for query in ({}, {"before_id": "9"}):
            context = {
                "conversations": [],
                "list_has_more": False,
                "filters": filters,
                "request": _request(alice, **query),
            }
            with translation.override(lang):
                ours = jinja.render("conversations/_conversation_rows.html", context)
                assert ours == _django("conversations/_conversation_rows.html", context)


@pytest.mark.parametrize("lang", LANGS)
def test_thread_messages_are_the_django_templates_bytes(shapes, lang):
    page = selectors.message_list(conversation=shapes, limit=100)
    assert len(page) > 35
    syslines = _syslines(shapes, page, False)
    assert syslines  # the assignment and the unassignment
    for has_older, has_newer in [(False, False), (True, True)]:
        context = {
            "messages_page": page,
            "has_older": has_older,
            "has_newer": has_newer,
            "conversation": shapes,
            "syslines": syslines,
        }
        with translation.override(lang):
            ours = jinja.render("conversations/_messages.html", context)
            theirs = _django("conversations/_messages.html", context)
        assert ours == theirs
    # and one message alone, as the socket's events and the send's answer render it
    for m in page:
        for context in ({"m": m}, {"m": m, "contact_name": "Ana <x>"}):
            with translation.override(lang):
                ours = jinja.render("conversations/_message.html", context)
                assert ours == _django("conversations/_message.html", context)


def test_the_pages_show_the_fragments(client, shapes, alice):
    """The inbox page and a thread page hold the rows and messages, rendered in place."""
    client.force_login(alice)
    inbox = client.get("/").content.decode()
    thread = client.get(f"/conversations/{shapes.pk}/").content.decode()
    rows = selectors.conversation_list(user=alice, limit=50)
    page = selectors.message_list(conversation=shapes, limit=50)
    lang = inbox.split('<html lang="', 1)[1].split('"', 1)[0]
    with translation.override(lang):
        row_html = _django("conversations/_conversation_row.html", {"c": rows[0]})
        message_html = _django(
            "conversations/_message.html",
            {"m": page[-1], "contact_name": shapes.contact.display_name},
        )
    assert row_html in inbox
    assert row_html in thread
    assert message_html in thread
    assert thread.count('class="msg ') == len(page)


def test_numbers_and_dates_print_as_django_prints_them():
    """What ``{{ value }}`` prints: localised and escaped as Django does."""
    env = jinja.engines[jinja.ENGINE].env  # type: ignore[attr-defined]
    template = env.from_string("{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}")
    when = timezone.now()
    safe = jinja.SafeString("<i>")
    values = {"a": 1234567, "b": 1.5, "c": None, "d": when, "e": "<'\"&>", "f": safe}
    for lang in LANGS:
        with translation.override(lang):
            ours = template.render(values)
            theirs = (
                Engine()
                .from_string("{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}")
                .render(Context({**values, "f": jinja.SafeString("<i>")}))
            )
        assert ours == theirs


@pytest.mark.parametrize("lang", LANGS)
def test_the_new_conversation_dialog_is_the_previous_templates_bytes(alice, lang):
    """Its numbers' options now come from ``number_options`` (the list's filter's)."""
    from django.template.loader import render_to_string

    from whatsapp.models import WhatsAppSession

    for i, (status, phone) in enumerate(
        [("connected", "5511900000001"), ("disconnected", ""), ("waiting_qr", "55119<&>")]
    ):
        row = whatsapp_services.session_create(owner=alice, name=f"N{i} <&'>")
        WhatsAppSession.objects.filter(pk=row.pk).update(status=status, phone_number=phone)
    context = {"sessions": list(WhatsAppSession.objects.order_by("name"))}
    with translation.override(lang):
        ours = render_to_string("conversations/_start_dialog.html", context)
        assert ours == _django("conversations/_start_dialog.html", context)
    assert ours.count("<option ") == 3


@pytest.mark.parametrize("lang", LANGS)
def test_search_hits_are_the_django_templates_bytes(number, alice, lang):
    """The search page's results: a customer's message, the team's, a private note,
    a contact with no phone, markup in names and texts, and both empty lists."""
    from conversations import search_selectors, search_views

    say = conversation_services.message_receive
    say(session=number, msg=inbound(text="the <b>invoice</b> & 'co'", push_name="Zé <Bia>"))
    agent = say(
        session=number, msg=inbound(phone="5511900000002", text="invoice sent", from_me=True)
    )
    Contact.objects.filter(pk=agent.conversation.contact_id).update(phone="")
    team.note_add(user=alice, conversation=agent.conversation, text="invoice: call <back>")
    hits = search_views._hit_rows(search_selectors.message_search(user=alice, text="invoice"))
    assert len(hits) == 3
    for context in (
        {"hits": hits, "next_page": False},
        {"hits": [], "next_page": False},
        {"hits": [], "next_page": True},
    ):
        with translation.override(lang):
            ours = jinja.render("conversations/_search_hits.html", context)
            theirs = _django("conversations/_search_hits.html", context)
        assert ours == theirs
    assert "Zé &lt;Bia&gt;" in _django(
        "conversations/_search_hits.html", {"hits": hits, "next_page": False}
    )
