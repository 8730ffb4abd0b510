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
    libraries={
        **get_installed_libraries(),
        **dict.fromkeys(("tags", "queues", "automatic"), "tests.conversations.reference_tags"),
    },
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


@pytest.fixture
def thread_shapes(shapes, number, alice, bob):
    """Conversations of every shape the thread's header and contact pane show."""
    from conversations.services import QueueFields, queue_create

    queue = queue_create(session=number, fields=QueueFields(name="Sales & <co>"))
    conversations = list(Conversation.objects.filter(session=number).order_by("pk"))
    group = next(c for c in conversations if c.contact.is_group)
    direct = [c for c in conversations if not c.contact.is_group]
    Conversation.objects.filter(pk=direct[-1].pk).update(queue=queue)
    Contact.objects.filter(pk=direct[0].contact_id).update(
        saved_name="Ana <&> 'x'", notes='call "later" <b>', no_auto_messages=True
    )
    return [group.pk, *(c.pk for c in direct)]


@pytest.mark.parametrize("lang", LANGS)
def test_the_thread_and_contact_pane_are_the_django_templates_bytes(
    thread_shapes, number, alice, bob, lang
):
    """The open conversation (header, tag editors, composer, the number-down bar) and
    the contact pane: each conversation shape, as its owner and as an agent, with the
    number connected and not, a group with and without its members known."""
    from django.middleware.csrf import get_token
    from django.utils.translation import gettext as _

    from conversations import views
    from conversations.selectors import Member
    from conversations.templatetags import inbox
    from whatsapp.models import WhatsAppSession

    members = [
        Member(name="Zé <admin>", phone="5511900000009", is_admin=True),
        Member(name="", phone="5511900000008", is_admin=False),
        Member(name="", phone="", is_admin=False),
    ]
    seen: list[str] = []
    for status in ("connected", "disconnected"):
        WhatsAppSession.objects.filter(pk=number.pk).update(
            status=status, status_since=timezone.now()
        )
        for pk in thread_shapes:
            for user in (alice, bob):
                request = _request(user)
                conversation = selectors.conversation_get(user=user, conversation_id=pk)
                context = {
                    **views._thread_context(request, conversation),
                    "conversation": conversation,
                    "request": request,
                    "user": user,
                    "csrf_token": get_token(request),
                }
                variants = [context["participants"]]
                if conversation.contact.is_group:
                    variants = [[], members]
                for participants in variants:
                    for known in (
                        (None, timezone.now()) if conversation.contact.is_group else (None,)
                    ):
                        conversation.contact.group_info_at = known
                        context["participants"] = participants
                        with translation.override(lang):
                            for name in (
                                "conversations/_thread.html",
                                "conversations/_contact_panel.html",
                            ):
                                ours = jinja.render(name, context)
                                assert ours == _django(name, context), name
                                seen.append(ours)
    # two states × two users × (two direct chats + a group's four variants) × two templates
    assert len(seen) == 2 * 2 * (2 + 4) * 2
    every = "".join(seen)
    for shown in ("Ana &lt;&amp;&gt; &#x27;x&#x27;", "Sales &amp; &lt;co&gt;", "Zé &lt;admin&gt;"):
        assert shown in every
    with translation.override(lang):
        assert inbox.participant_count(3) in every
        assert inbox.admin_label() in every
        assert _("Reopen") in every and _("Mark pending") in every


@pytest.mark.parametrize("lang", LANGS)
def test_the_inbox_page_body_is_the_django_templates_bytes(
    thread_shapes, number, alice, bob, django_user_model, lang
):
    """The inbox page around the list and the thread: the filters (numbers, queues,
    tags, each selected or not), the business-hours chips, the new conversation's
    dialog, the unread counts, mentions and queues the page script reads; with no
    conversation open and with one, as the owner and as an agent, with no number."""
    from django.middleware.csrf import get_token

    from conversations import views
    from conversations.services import automation
    from whatsapp.models import WhatsAppSession

    week = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    conf = automation.number_settings_get(session=number)
    values = {f: getattr(conf, f) for f in automation.SETTINGS_FIELDS}
    automation.number_settings_update(
        session=number,
        by=alice,
        values={
            **values,
            "hours_enabled": True,
            "business_hours": {"weekly": week, "exceptions": []},
        },
    )
    closed = whatsapp_services.session_create(owner=alice, name="Night <&> shift")
    automation.number_settings_update(
        session=closed,
        by=alice,
        values={
            **values,
            "hours_enabled": True,
            "business_hours": {"weekly": {}, "exceptions": []},
        },
    )
    WhatsAppSession.objects.filter(pk=closed.pk).update(status="disconnected")
    tag = team.tag_create(session=number, name="VIP & <co>", color="red")
    team.note_add(
        user=alice, conversation=Conversation.objects.get(pk=thread_shapes[1]), text="@bob see"
    )
    queue = number.queues.get()
    seen: list[str] = []
    for user, query, open_pk in [
        (alice, {}, None),
        (
            alice,
            {
                "number": str(number.pk),
                "tag": str(tag.pk),
                "status": "open",
                "kind": "direct",
                "scope": "mine",
                "queue": str(queue.pk),
                "q": "a <b>",
            },
            thread_shapes[1],
        ),
        (bob, {"scope": "unassigned", "kind": "groups"}, thread_shapes[0]),
        (bob, {"status": "pending"}, None),
    ]:
        request = _request(user, **query)
        context = {
            **views.inbox_context(request, open_pk),
            "request": request,
            "user": user,
            "csrf_token": get_token(request),
        }
        with translation.override(lang):
            ours = jinja.render("conversations/_inbox.html", context)
            assert ours == _django("conversations/_inbox.html", context)
        seen.append(ours)
    every = "".join(seen)
    assert 'class="hours-chip open"' in every and 'class="hours-chip closed"' in every
    assert "Night &lt;&amp;&gt; shift" in every
    assert f'<option value="{tag.pk}" selected>VIP &amp; &lt;co&gt;</option>' in every
    assert 'value="a &lt;b&gt;"' in every
    assert '<dialog class="modal start-dialog"' in every
    mentioned = Conversation.objects.get(pk=thread_shapes[1]).pk
    assert f'id="vb-mentions" type="application/json">[{mentioned}]' in every
    assert "Sales \\u0026 \\u003Cco\\u003E" in every  # the queues' map, escaped as JSON in HTML

    nobody = _request(django_user_model.objects.create(username="new-user"))
    context = {
        **views.inbox_context(nobody, None),
        "request": nobody,
        "user": nobody.user,
        "csrf_token": "t",
    }
    with translation.override(lang):
        ours = jinja.render("conversations/_inbox.html", context)
        assert ours == _django("conversations/_inbox.html", context)
    assert 'href="/numbers/"' in ours and "start-dialog" not in ours
