"""Full-text search: the index on either database, ranking, snippets, accents, access,
filters (time zones included), the results page and a thread opened at a result."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import search_index, services
from conversations.models import Message
from conversations.search_selectors import (
    SearchFilters,
    conversation_search,
    marked_html,
    message_search,
)
from tests.factories import inbound
from whatsapp import services as whatsapp_services
from whatsapp.gateway.base import MessageKind

pytestmark = pytest.mark.django_db


def _say(number, text: str, phone: str = "5511988880001", **kw) -> Message:
    return services.message_receive(session=number, msg=inbound(phone=phone, text=text, **kw))


def _bodies(user, text: str, **filters) -> list[str]:
    return [h.body for h in message_search(user=user, text=text, **filters)]


@pytest.fixture
def folds_accents():
    if connection.vendor == "postgresql" and not search_index.pg_folds_accents():
        pytest.skip("this PostgreSQL has no unaccent extension: accents stay significant")
    if search_index.backend() == "like":
        pytest.skip("this SQLite has no FTS5: the plain fallback does not fold accents")


# --- matching and ranking ---------------------------------------------------------------------


def test_every_word_must_match(number, alice):
    _say(number, "the invoice is late")
    _say(number, "the invoice arrived")
    assert _bodies(alice, "invoice late") == ["the invoice is late"]
    assert sorted(_bodies(alice, "invoice")) == ["the invoice arrived", "the invoice is late"]
    assert _bodies(alice, "nothing here") == []
    assert _bodies(alice, "  ?! ") == []  # no words at all


def test_the_best_match_comes_first_then_the_newest(number, alice):
    if search_index.backend() == "like":
        pytest.skip("the plain fallback has no rank: newest first only")
    weak = _say(number, "about my account, the shipping, and one invoice question at the end")
    strong = _say(number, "invoice invoice invoice")
    older_tie = _say(number, "second copy of the invoice", phone="5511988880002")
    newer_tie = _say(number, "second copy of the invoice", phone="5511988880003")
    hits = message_search(user=alice, text="invoice")
    assert hits[0].pk == strong.pk
    assert hits[-1].pk == weak.pk
    ties = [h.pk for h in hits if h.pk in {older_tie.pk, newer_tie.pk}]
    assert ties == [newer_tie.pk, older_tie.pk]


def test_the_snippet_marks_the_words_and_escapes_the_text(number, alice):
    _say(number, "<script>alert(1)</script> please send the invoice <b>now</b>")
    [hit] = message_search(user=alice, text="invoice")
    assert "<mark>invoice</mark>" in hit.snippet
    assert "<script>" not in hit.snippet and "<b>" not in hit.snippet
    assert re.sub(r"</?mark>", "", hit.snippet).count("<") == 0


def test_marked_html_balances_markers_the_text_carried():
    start, stop = search_index.START, search_index.STOP
    assert marked_html(f"{stop}a {start}b{start} <c>") == "a <mark>b &lt;c&gt;</mark>"


def test_accents_fold_both_ways(number, alice, folds_accents):
    _say(number, "Quero saber da ação de cobrança")
    _say(number, "sem acento: acao")
    assert len(_bodies(alice, "acao")) == 2
    assert len(_bodies(alice, "ação")) == 2
    [hit] = message_search(user=alice, text="cobranca")
    assert "<mark>cobrança</mark>" in hit.snippet


def test_a_file_name_matches_too(number, alice):
    _say(number, "", kind=MessageKind.DOCUMENT, filename="boleto-marco.pdf")
    [hit] = message_search(user=alice, text="boleto")
    assert hit.file_name == "boleto-marco.pdf"
    assert "<mark>boleto</mark>" in hit.snippet


def test_a_hit_carries_what_the_results_show(number, alice):
    """Read as columns, not models: the contact's name (as Contact.display_name
    gives it), phone, the number's name, the message's time and direction."""
    said = timezone.now().replace(microsecond=0)
    message = _say(number, "the invoice is late", timestamp=said)  # from "Maria"
    note = services.note_add(user=alice, conversation=message.conversation, text="invoice ok")
    for sessions in (None, {number.pk: number}):
        hits = {h.pk: h for h in message_search(user=alice, text="invoice", sessions=sessions)}
        hit = hits[message.pk]
        contact = message.conversation.contact
        assert (hit.name, hit.phone) == (contact.display_name, "5511988880001")
        assert hit.number == "Support"
        assert hit.name == "Maria"
        assert hit.conversation_id == message.conversation_id
        assert hit.session_id == number.pk
        assert hit.when == said and hit.is_inbound and not hit.is_note
        assert hits[note.pk].is_note and hits[note.pk].when == note.created_at


def test_edits_and_deletes_reach_the_index(number, alice):
    m = _say(number, "first words")
    Message.objects.filter(pk=m.pk).update(body="other words entirely")
    assert _bodies(alice, "first") == []
    assert _bodies(alice, "entirely") == ["other words entirely"]
    Message.objects.filter(pk=m.pk).delete()
    assert _bodies(alice, "entirely") == []


def test_the_plain_fallback_without_an_index(number, alice, monkeypatch):
    monkeypatch.setattr(search_index, "backend", lambda db=None: "like")
    _say(number, "the Invoice is late")
    [hit] = message_search(user=alice, text="invoice late")
    assert hit.snippet == "the <mark>Invoice</mark> is <mark>late</mark>"


def test_the_words_statements_are_planned_for_their_words_each_time(number, alice, prepares):
    # How many messages hold the words decides the plan; prepared after five runs, the
    # statement could get a plan made without them (vbcrm/db/plans.py): never prepared.
    _say(number, "the invoice is late")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
        for _ in range(7):
            assert _bodies(alice, "invoice") == ["the invoice is late"]
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [s for (s,) in cursor.fetchall()]
    assert not [s for s in prepared if "ts_rank" in s or "search_vector" in s]


# --- access -------------------------------------------------------------------------------


def test_another_owners_messages_never_appear(number, alice, bob, charlie):
    _say(number, "invoice for alice's customer")
    theirs = whatsapp_services.session_create(owner=charlie, name="Other")
    _say(theirs, "invoice for charlie's customer")
    assert _bodies(alice, "invoice") == ["invoice for alice's customer"]
    assert _bodies(bob, "invoice") == ["invoice for alice's customer"]  # agent of the number
    assert _bodies(charlie, "invoice") == ["invoice for charlie's customer"]
    assert [c.session_id for c in conversation_search(user=charlie, text="Maria")] == [theirs.pk]


def test_the_results_page_shows_only_what_the_user_sees(client, number, charlie):
    _say(number, "invoice for alice's customer")
    client.force_login(charlie)
    response = client.get("/conversations/search/", {"q": "invoice"})
    assert response.status_code == 200
    assert "alice&#x27;s customer" not in response.content.decode()
    assert 'class="contact-row search-hit"' not in response.content.decode()


def test_the_results_page_needs_a_login(client):
    response = client.get("/conversations/search/", {"q": "x"})
    assert response.status_code == 302


# --- filters --------------------------------------------------------------------------------


def test_filters_by_number_direction_and_tag(number, alice, bob):
    m = _say(number, "invoice from the customer")
    conversation = m.conversation
    services.note_add(user=bob, conversation=conversation, text="invoice note for the team")
    services.message_queue_outbound(user=bob, conversation=conversation, text="invoice sent")
    other = whatsapp_services.session_create(owner=alice, name="Sales")
    tagged = _say(other, "invoice on sales", phone="5511900000009")
    tag = services.tag_create(session=other, name="vip")
    services.conversation_tags_set(conversation=tagged.conversation, tag_ids=[tag.pk])

    def bodies(**kw) -> list[str]:
        return sorted(_bodies(alice, "invoice", filters=SearchFilters(**kw)))

    assert len(bodies()) == 4
    assert bodies(direction=Message.Direction.NOTE) == ["invoice note for the team"]
    assert bodies(direction=Message.Direction.INBOUND) == [
        "invoice from the customer",
        "invoice on sales",
    ]
    assert bodies(direction=Message.Direction.OUTBOUND) == ["invoice sent"]
    assert bodies(session_id=other.pk) == ["invoice on sales"]
    assert bodies(tag_id=tag.pk) == ["invoice on sales"]


def test_days_are_the_readers_days(number, alice, settings):
    # 02:30 UTC on 10 March is 23:30 on 9 March in São Paulo (UTC-3).
    _say(number, "late invoice", timestamp=datetime(2026, 3, 10, 2, 30, tzinfo=UTC))
    _say(number, "early invoice", timestamp=datetime(2026, 3, 10, 3, 0, tzinfo=UTC))
    day9, day10 = date(2026, 3, 9), date(2026, 3, 10)

    def on(first: date, last: date) -> list[str]:
        return _bodies(alice, "invoice", filters=SearchFilters(date_from=first, date_to=last))

    with timezone.override("America/Sao_Paulo"):
        assert on(day9, day9) == ["late invoice"]
        assert on(day10, day10) == ["early invoice"]  # 00:00 there, the day's first moment
        assert sorted(on(day9, day10)) == ["early invoice", "late invoice"]
    with timezone.override("UTC"):
        assert on(day9, day9) == []
        assert sorted(on(day10, day10)) == ["early invoice", "late invoice"]


def test_the_page_keeps_the_filters_asked_for(client, number, alice):
    other = whatsapp_services.session_create(owner=alice, name="<b>Sales</b>")
    tag = services.tag_create(session=other, name="vip & co")
    client.force_login(alice)
    asked = {"q": "x", "number": other.pk, "direction": Message.Direction.INBOUND, "tag": tag.pk}
    page = client.get("/conversations/search/", asked).content.decode()
    selected = re.findall(r'<option value="([^"]*)" selected>([^<]*)</option>', page)
    assert (str(other.pk), "&lt;b&gt;Sales&lt;/b&gt;") in selected
    assert (str(tag.pk), "vip &amp; co") in selected
    assert (Message.Direction.INBOUND.value, "From the customer") in selected
    assert f'<option value="{number.pk}">{number.name}</option>' in page  # not selected
    page = client.get("/conversations/search/", {"q": "x"}).content.decode()
    assert not re.findall(
        r'<option value="[^"]*" selected>[^<]*</option>', page.split("</header>")[1]
    )


def test_the_page_says_what_is_wrong_with_the_filters(client, number, alice):
    client.force_login(alice)
    body = client.get(
        "/conversations/search/", {"q": "x", "date_from": "2026-03-10", "date_to": "2026-03-09"}
    ).content.decode()
    assert "The first day comes after the last one." in body
    body = client.get("/conversations/search/", {"q": "x", "date_from": "yesterday"}).content
    assert b'id="search-errors"' in body


# --- contacts ---------------------------------------------------------------------------------


def test_contacts_match_by_name_start_and_phone(number, alice, settings):
    settings.VBCRM_DEFAULT_COUNTRY_CODE = "55"
    services.message_receive(
        session=number, msg=inbound(phone="5541999990001", text="hi", push_name="Ana Souza")
    )
    services.message_receive(
        session=number, msg=inbound(phone="5511977770002", text="hi", push_name="Bruno")
    )

    def names(text: str) -> list[str]:
        return [c.contact.display_name for c in conversation_search(user=alice, text=text)]

    assert names("ana") == ["Ana Souza"]
    assert names("sou") == ["Ana Souza"]  # a later word of the name
    assert names("uza") == []  # not the middle of a word
    assert names("5541") == ["Ana Souza"]
    assert names("+55 11 97777") == ["Bruno"]
    assert names("11977770") == ["Bruno"]  # without the country code
    assert names("ana sou") == ["Ana Souza"]


# --- the page and the thread it opens -------------------------------------------------------


def test_the_page_links_each_hit_to_its_message(client, number, alice):
    m = _say(number, "where is my invoice?")
    client.force_login(alice)
    body = client.get("/conversations/search/", {"q": "invoice"}).content.decode()
    assert f'href="/conversations/{m.conversation_id}/?message={m.pk}#message-{m.pk}"' in body
    assert "<mark>invoice</mark>" in body
    assert "Maria" in body and "+5511988880001" in body and "Support" in body


def test_the_page_pages_by_cursor(client, number, alice, monkeypatch):
    monkeypatch.setattr("conversations.search_views.PAGE", 2)
    ids = [_say(number, f"invoice {i}", phone=f"55119000000{i}").pk for i in range(5)]
    client.force_login(alice)
    seen: list[int] = []
    url = "/conversations/search/?q=invoice"
    while url:
        body = client.get(url).content.decode()
        seen += [int(i) for i in re.findall(r'data-message="(\d+)"', body)]
        more = re.search(r'id="search-more" href="([^"]+)"|href="([^"]+)" class="more"', body)
        url = ("/conversations/search/" + more.group(2).replace("&amp;", "&")) if more else ""
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_the_inbox_list_search_uses_the_index(client, number, alice, folds_accents):
    _say(number, "preciso da ação", phone="5511900000001", push_name="Uma")
    _say(number, "nada", phone="5511900000002", push_name="Duas")
    client.force_login(alice)
    body = client.get("/", {"q": "acao"}).content.decode()
    assert "Uma" in body and "Duas" not in body
    assert "Uma" in client.get("/", {"q": "preci"}).content.decode()  # the word typed so far


def test_a_thread_opens_at_a_message_with_pages_around_it(
    client, number, alice, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr("conversations.views.THREAD_PAGE", 4)
    monkeypatch.setattr("conversations.views.AROUND", 2)
    ids = [_say(number, f"m{i}").pk for i in range(9)]
    conversation_id = Message.objects.get(pk=ids[0]).conversation_id
    url = f"/conversations/{conversation_id}/"
    client.force_login(alice)
    with CaptureQueriesContext(connection) as plain:
        client.get(url)
    with django_assert_num_queries(len(plain.captured_queries) + 1):
        body = client.get(url, {"message": ids[4]}).content.decode()
    shown = [int(i) for i in re.findall(r'id="message-(\d+)"', body)]
    assert shown == ids[3:7]
    assert f'data-hit="{ids[4]}"' in body
    assert f'data-before="{ids[3]}"' in body and f'data-after="{ids[6]}"' in body
    newer = client.get(f"{url}messages/", {"after": ids[6]}).content.decode()
    assert [int(i) for i in re.findall(r'id="message-(\d+)"', newer)] == ids[7:9]
    assert "data-after" not in newer and "data-before" not in newer


def test_a_message_of_another_conversation_opens_the_newest_page(client, number, alice):
    here = _say(number, "here")
    there = _say(number, "there", phone="5511900000005")
    client.force_login(alice)
    body = client.get(
        f"/conversations/{here.conversation_id}/", {"message": there.pk}
    ).content.decode()
    assert "data-hit" not in body and f'id="message-{there.pk}"' not in body


def test_sqlite_triggers_come_back_after_a_migrate(number, alice):
    if search_index.backend() != "fts5":
        pytest.skip("SQLite with FTS5 only: its index is kept by triggers")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER message_search_ai")
    missed = _say(number, "written while the trigger was gone")
    assert _bodies(alice, "trigger") == []
    search_index.after_migrate(using="default")
    assert _bodies(alice, "trigger") == [missed.body]  # the index was rebuilt
    _say(number, "and the trigger works again")
    assert len(_bodies(alice, "trigger")) == 2


def test_the_page_runs_the_same_queries_for_3_or_30_hits(
    client, number, alice, django_assert_num_queries
):
    client.force_login(alice)
    for i in range(3):
        _say(number, f"invoice {i}", phone=f"551190000{i:04d}", push_name=f"Invoice {i}")
    url = "/conversations/search/?q=invoice"
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(3, 30):
        _say(number, f"invoice {i}", phone=f"551190000{i:04d}", push_name=f"Invoice {i}")
    with django_assert_num_queries(len(few.captured_queries)):
        body = client.get(url).content.decode()
    assert body.count('class="contact-row search-hit"') == 30
    # session, user (with the header's availability), the numbers, the tags, the messages
    # (on PostgreSQL: the newest id, the newest matches with their numbers, the page's
    # rows), the contacts and their conversations
    assert len(few.captured_queries) == (9 if connection.vendor == "postgresql" else 7)


def test_only_the_newest_matches_are_ranked(number, alice, monkeypatch):
    if search_index.backend() == "like":
        pytest.skip("the plain fallback has no rank: newest first only")
    monkeypatch.setattr("conversations.search_selectors.WINDOW", 2)
    _say(number, "invoice invoice invoice, the best match but the oldest")
    newer = [_say(number, f"one invoice among many other words, number {i}").pk for i in range(2)]
    assert sorted(h.pk for h in message_search(user=alice, text="invoice")) == newer


def test_groups_of_a_number_that_ignores_them_stay_hidden(number, alice):
    services.message_receive(
        session=number,
        msg=inbound(
            chat="120363000000000001@g.us",
            sender="5511988880001@s.whatsapp.net",
            push_name="Ana",
            is_group=True,
            text="invoice in the group",
        ),
    )
    assert _bodies(alice, "invoice") == ["invoice in the group"]
    whatsapp_services.session_update_options(session=number, ignore_groups=True)
    assert _bodies(alice, "invoice") == []
