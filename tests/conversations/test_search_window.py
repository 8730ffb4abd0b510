"""The newest matches a search ranks, on PostgreSQL: found a stretch of id buckets at a
time (``search_selectors._pg_window``), they must be exactly the newest ``WINDOW``
matches the user may see, whatever the matches' density, the user's share of them and
the filters. Messages here get ids far apart, so they spread over many buckets."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import search_index, search_selectors, services
from conversations.models import Conversation, Message
from conversations.search_selectors import SearchFilters, message_search
from conversations.services import team
from tests.factories import inbound
from whatsapp import services as whatsapp_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]

GAP = 5_000  # between two messages' ids: about three messages a bucket
FIRST_ID = 10_000_000  # above any id the sequence gave


def _conversation(number, phone: str) -> Conversation:
    return services.message_receive(session=number, msg=inbound(phone=phone)).conversation


def _spread(
    conversations: list[Conversation], bodies: list[str], seed: int = 7, gap: int = GAP
) -> list[int]:
    """One message per body, oldest first, ids ``gap`` apart, each in a conversation
    drawn from ``conversations``; their ids."""
    pick = random.Random(seed)
    rows = [
        Message(
            pk=FIRST_ID + i * gap,
            conversation=pick.choice(conversations),
            wa_id=f"SPREAD{i}",
            direction=pick.choice([Message.Direction.INBOUND, Message.Direction.OUTBOUND]),
            body=body,
            status=Message.Status.RECEIVED,
        )
        for i, body in enumerate(bodies)
    ]
    Message.objects.bulk_create(rows)
    return [m.pk for m in rows]


def _all_hits(user, text: str, **kw) -> list[tuple[float, int]]:
    """Every page's ``(rank, id)``, page after page."""
    out: list[tuple[float, int]] = []
    after = None
    while True:
        hits = message_search(user=user, text=text, after=after, limit=7, **kw)
        out += [(h.rank, h.pk) for h in hits]
        if len(hits) < 7:
            return out
        after = out[-1]


def _expected(user, text: str, window: int, filters: SearchFilters | None = None) -> set[int]:
    """The newest ``window`` matches ``user`` sees, read the plain way."""
    qs = search_selectors._filtered(search_selectors._seen(user), filters or SearchFilters())
    qs = search_index.matching(qs, search_index.words(text))
    return set(qs.order_by("-pk").values_list("pk", flat=True)[:window])


@pytest.fixture
def window(monkeypatch):
    monkeypatch.setattr(search_selectors, "WINDOW", 25)
    return 25


@pytest.fixture
def other_number(django_user_model):
    dora = django_user_model.objects.create_user(username="dora", password="x")
    return whatsapp_services.session_create(owner=dora, name="Elsewhere")


def _bodies(n: int, seed: int = 3) -> list[str]:
    """``n`` texts: "invoice" in every other one, "refund" in one of ten and only among
    the older half, "overdue" in the three oldest."""
    pick = random.Random(seed)
    out = []
    for i in range(n):
        words = [pick.choice(["hello", "order", "thanks", "box"]) for _ in range(4)]
        if i % 2 == 0:
            words.append("invoice")
        if i < n // 2 and i % 10 == 0:
            words.append("refund")
        if i < 3:
            words.append("overdue")
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize("most", [256, 3])
@pytest.mark.parametrize("text", ["invoice", "refund", "overdue", "invoice refund", "absent"])
def test_the_window_is_the_newest_matches_however_common(
    number, alice, window, text, most, monkeypatch
):
    """(``most``: the most buckets a stretch may hold; past it, everything left.)"""
    monkeypatch.setattr(search_selectors, "MAX_BUCKETS", most)
    mine = [_conversation(number, f"55119000000{i:02d}") for i in range(4)]
    ids = _spread(mine, _bodies(600))
    assert ids[-1] // search_index.BUCKET - ids[0] // search_index.BUCKET > 150  # many buckets
    terms, numbers = search_index.words(text), search_selectors._numbers_seen(alice)
    found = search_selectors._pg_window(alice, terms, SearchFilters(), numbers)
    assert [pk for _, pk in found] == sorted(_expected(alice, text, window), reverse=True)
    hits = _all_hits(alice, text)
    assert {pk for _, pk in hits} == _expected(alice, text, window)
    assert hits == sorted(hits, reverse=True)  # best rank first, then the newest
    assert len(hits) == len({pk for _, pk in hits})


def test_another_owners_matches_never_fill_the_window(number, other_number, alice, monkeypatch):
    """Most of what a stretch holds is another owner's: the user's own matches, older,
    still fill the window (read with the access rule once the share is small)."""
    window = 10
    monkeypatch.setattr(search_selectors, "WINDOW", window)
    mine = [_conversation(number, "5511900000001")]
    theirs = [_conversation(other_number, f"55119100000{i:02d}") for i in range(30)]
    _spread(mine + theirs, _bodies(900))
    by_rule = []
    real = search_selectors._window_by_rule
    monkeypatch.setattr(
        search_selectors, "_window_by_rule", lambda *a: by_rule.append(a) or real(*a)
    )
    hits = _all_hits(alice, "invoice")
    assert len(hits) == window
    assert {pk for _, pk in hits} == _expected(alice, "invoice", window)
    assert not Message.objects.filter(pk__in=[pk for _, pk in hits], conversation__in=theirs)
    assert by_rule  # the small share of the user's was seen, and the rest read by the rule


def test_filters_apply_inside_the_window(number, alice, bob, window):
    convs = [_conversation(number, f"55119000000{i:02d}") for i in range(6)]
    _spread(convs, _bodies(600))
    tag = team.tag_create(session=number, name="VIP")
    team.conversation_tags_set(conversation=convs[0], tag_ids=[tag.pk])
    team.contact_tags_set(contact=convs[1].contact, tag_ids=[tag.pk])
    for f in (
        SearchFilters(tag_id=tag.pk),
        SearchFilters(direction=Message.Direction.OUTBOUND),
        SearchFilters(session_id=number.pk, direction=Message.Direction.INBOUND),
    ):
        hits = _all_hits(bob, "invoice", filters=f)
        assert {pk for _, pk in hits} == _expected(bob, "invoice", window, f), f
        assert hits


def test_groups_hidden_by_their_number_stay_out_of_the_window(number, alice, window):
    person = _conversation(number, "5511900000001")
    group = services.message_receive(
        session=number,
        msg=inbound(
            chat="120363000000000001@g.us",
            sender="5511988880001@s.whatsapp.net",
            is_group=True,
            text="hello",
        ),
    ).conversation
    _spread([person, group], _bodies(200))
    whatsapp_services.session_update_options(session=number, ignore_groups=True)
    hits = _all_hits(alice, "invoice")
    assert hits
    assert {pk for _, pk in hits} == _expected(alice, "invoice", window)
    assert not Message.objects.filter(pk__in=[pk for _, pk in hits], conversation=group)


def test_a_common_word_reads_one_stretch(number, alice, window):
    """Enough matches in the newest buckets: the numbers the user sees, the newest
    message, one read of the messages (with their numbers), then the page's rows; the
    conversations are read only when a number ignores groups."""
    _spread([_conversation(number, "5511900000001")], ["invoice"] * 300, gap=1)
    with CaptureQueriesContext(connection) as ctx:
        hits = message_search(user=alice, text="invoice")
    assert len(hits) == window
    assert len(ctx.captured_queries) == 4
    whatsapp_services.session_update_options(session=number, ignore_groups=True)
    with CaptureQueriesContext(connection) as ctx:
        assert len(message_search(user=alice, text="invoice")) == window
    assert len(ctx.captured_queries) == 6  # and the conversations, and their contacts


def _index_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'msg_search'")
        return cursor.fetchone()[0]


def test_the_index_serves_a_stretch():
    """A stretch's query is written as the index's second key is: PostgreSQL reads both
    of its conditions from the index (a query that drifted from the index's expression
    would read the table instead)."""
    assert "(ARRAY[(id / 16384)])" in _index_definition()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    stretch = search_index.matching(Message.objects.all(), ["invoice"]).filter(
        search_index.in_buckets(3, 5)
    )
    plan = stretch.explain()
    assert "Bitmap Index Scan on msg_search" in plan
    assert "Index Cond: ((search_vector @@" in plan and "ARRAY[(id / 16384)] && " in plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_both_ways_without_a_transaction(number, alice):
    """The index is rebuilt beside the old one (``CONCURRENTLY``, outside a transaction:
    messages keep coming in meanwhile) and put in its place, both ways; a build cut
    short before (an invalid ``msg_search_new``) is no obstacle."""
    _say = services.message_receive
    _say(session=number, msg=inbound(text="an invoice before"))
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX msg_search_new ON whatsapp_mensagens (wa_id)")
    search_index.without_buckets(connection)
    assert "ARRAY" not in _index_definition()
    search_index.with_buckets(connection)
    assert "(ARRAY[(id / 16384)])" in _index_definition()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'msg_search%'")
        assert cursor.fetchone()[0] == 1
    _say(session=number, msg=inbound(text="an invoice after"))
    assert [h.body for h in message_search(user=alice, text="invoice")] == [
        "an invoice after",
        "an invoice before",
    ]


def test_the_snippet_is_postgresqls_headline_with_the_same_options(number):
    """The results' snippets come from ``search_index.headline``, one SQL expression
    with its options written once: the same text as Django's ``SearchHeadline`` with
    those options, over short and long texts, one match or several, accents and marks."""
    from django.contrib.postgres.search import SearchHeadline

    conversation = _conversation(number, "5511900000001")
    long = " ".join(f"word{i}" for i in range(60))
    bodies = [
        "the invoice",
        f"{long} invoice {long} invoice again {long}",
        "Ação: a cobrança do boleto <b>&amp;</b> invoice, “quoted” invoice",
    ]
    _spread([conversation], bodies, gap=1)
    for terms in (["invoice"], ["cobrança", "boleto"], ["invoice", "again"]):
        qs = search_index.matching(Message.objects.filter(conversation=conversation), terms)
        ours = dict(qs.annotate(s=search_index.headline(terms)).values_list("pk", "s"))
        django = SearchHeadline(
            "body",
            search_index.match_query(terms),
            config=search_index.CONFIG,
            start_sel=search_index.START,
            stop_sel=search_index.STOP,
            max_words=24,
            min_words=8,
            short_word="2",
            max_fragments=2,
            fragment_delimiter=" … ",
        )
        theirs = dict(qs.annotate(s=django).values_list("pk", "s"))
        assert ours == theirs and ours, terms
        assert all(search_index.START in text for text in ours.values())
