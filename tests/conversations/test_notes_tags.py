"""Private notes (never sent to WhatsApp, @mentions) and tags (the owner's, filters),
at the services, selectors and pages."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from conversations import selectors, services
from conversations.models import Message, NoteMention, Tag
from conversations.selectors import ConversationFilters
from tests.factories import inbound
from whatsapp import selectors as wa_selectors
from whatsapp import services as wa_services

pytestmark = pytest.mark.django_db


# --- notes never reach WhatsApp ------------------------------------------------------------


def test_a_note_is_never_in_the_outbox_nor_work_for_the_worker(number, conversation, bob):
    note = services.note_add(user=bob, conversation=conversation, text="customer is VIP")
    assert note.direction == Message.Direction.NOTE and note.status == Message.Status.NOTE
    assert services.outbox_pending(session_id=number.pk) == []
    assert selectors.sessions_with_work(session_ids=[number.pk]) == set()
    assert services.receipts_pending(session_id=number.pk) == []
    # Even a note forced into "pending" by hand stays out of the outbox: wrong direction.
    Message.objects.filter(pk=note.pk).update(status=Message.Status.PENDING)
    assert services.outbox_pending(session_id=number.pk) == []
    assert services.outbox_expire() == 0


def test_a_note_leaves_the_preview_and_unread_count_alone(conversation, bob):
    conversation.refresh_from_db()
    before = (conversation.last_message_preview, conversation.last_message_at)
    services.note_add(user=bob, conversation=conversation, text="internal")
    conversation.refresh_from_db()
    assert (conversation.last_message_preview, conversation.last_message_at) == before
    assert conversation.unread_count == 1  # the customer's "first" only


def test_a_note_cannot_be_quoted_to_whatsapp(conversation, bob):
    note = services.note_add(user=bob, conversation=conversation, text="internal")
    with pytest.raises(ValidationError):
        services.message_send(
            user=bob, conversation=conversation, text="reply", reply_to_id=note.pk
        )


def test_a_note_is_refused_empty_too_long_or_unstorable(conversation, bob):
    for text in ("  ", "x" * 4097, "a\x00b"):
        with pytest.raises(ValidationError):
            services.note_add(user=bob, conversation=conversation, text=text)
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_a_client_key_makes_a_retried_note_one_note(conversation, bob):
    a = services.note_add(user=bob, conversation=conversation, text="x", client_key="k1")
    b = services.note_add(user=bob, conversation=conversation, text="x", client_key="k1")
    assert a.pk == b.pk


# --- mentions ------------------------------------------------------------------------------


def test_a_mention_of_someone_who_works_the_number_is_recorded(conversation, alice, bob):
    note = services.note_add(user=alice, conversation=conversation, text="@bob, call them?")
    assert list(NoteMention.objects.values_list("user__username", flat=True)) == ["bob"]
    assert selectors.mentioned_conversation_ids(user=bob) == [conversation.pk]
    assert selectors.mentioned_conversation_ids(user=alice) == []
    assert note.mentions.count() == 1
    assert services.mentions_mark_read(user=bob, conversation=conversation) == 1
    assert selectors.mentioned_conversation_ids(user=bob) == []


def test_someone_who_does_not_work_the_number_cannot_be_mentioned(conversation, alice, charlie):
    services.note_add(user=alice, conversation=conversation, text="@charlie @alice mail x@bob.com")
    # charlie is not on the number, alice wrote it, and an e-mail address mentions nobody
    assert not NoteMention.objects.exists()
    assert selectors.mentioned_conversation_ids(user=charlie) == []


def test_mentions_of_a_number_one_left_are_not_shown(conversation, number, alice, bob):
    services.note_add(user=alice, conversation=conversation, text="@bob look")
    wa_services.session_agent_remove(session=number, user=bob)
    assert selectors.mentioned_conversation_ids(user=bob) == []


# --- tags ----------------------------------------------------------------------------------


def test_tags_belong_to_the_number_s_owner_whoever_makes_them(number, alice, bob):
    tag = services.tag_create(session=number, name="  VIP   client ", color="red")
    assert (tag.owner, tag.name, tag.color) == (alice, "VIP client", "red")
    assert services.tag_create(session=number, name="vip CLIENT").pk == tag.pk
    assert [t.pk for t in selectors.tag_list(user=bob)] == [tag.pk]
    with pytest.raises(ValidationError):
        services.tag_create(session=number, name="x", color="#ff0000")
    with pytest.raises(ValidationError):
        services.tag_create(session=number, name="y" * 41)


def test_the_tags_one_may_use_are_the_same_from_the_numbers_a_page_read(
    number, alice, bob, charlie
):
    """The inbox page reads the user's numbers first, and takes the tags from their owners."""
    own = wa_services.session_create(owner=bob, name="Bob's")
    other = wa_services.session_create(owner=charlie, name="Not seen")
    for session, name in [(number, "b"), (number, "A"), (own, "c"), (other, "hidden")]:
        services.tag_create(session=session, name=name)
    numbers = list(wa_selectors.session_list(user=bob))
    expected = [t.pk for t in selectors.tag_list(user=bob)]
    assert [t.name for t in selectors.tag_list(user=bob)] == ["A", "b", "c"]
    assert [t.pk for t in selectors.tag_list(user=bob, sessions=numbers)] == expected


def test_a_page_of_rows_reads_its_tags_and_its_contacts_tags_in_one_query(
    number, bob, django_assert_num_queries
):
    a = services.message_receive(session=number, msg=inbound(phone="5511900000001")).conversation
    b = services.message_receive(session=number, msg=inbound(phone="5511900000002")).conversation
    c = services.message_receive(session=number, msg=inbound(phone="5511900000003")).conversation
    names = ["beta", "Alfa", "gama", "Zulu"]
    tags = {n: services.tag_create(session=number, name=n) for n in names}
    services.conversation_tags_set(conversation=a, tag_ids=[tags["gama"].pk, tags["Alfa"].pk])
    services.contact_tags_set(contact=a.contact, tag_ids=[tags["Zulu"].pk, tags["beta"].pk])
    services.contact_tags_set(contact=b.contact, tag_ids=[tags["gama"].pk])
    rows = selectors.conversation_list(user=bob, tags=False)
    with django_assert_num_queries(1):
        selectors.with_tags(rows)
    by_id = {r.pk: r for r in rows}
    with django_assert_num_queries(0):
        # by name, whatever its case, as the list and the editors show them
        assert [t.name for t in by_id[a.pk].tags.all()] == ["Alfa", "gama"]
        assert [t.name for t in by_id[a.pk].contact.tags.all()] == ["beta", "Zulu"]
        assert [t.name for t in by_id[b.pk].tags.all()] == []
        assert [t.name for t in by_id[b.pk].contact.tags.all()] == ["gama"]
        assert list(by_id[c.pk].tags.all()) == list(by_id[c.pk].contact.tags.all()) == []
        loaded = by_id[a.pk].tags.all()[0]
    fresh = Tag.objects.get(pk=tags["Alfa"].pk)
    assert (loaded.pk, loaded.owner_id, loaded.name, loaded.color, loaded.created_at) == (
        fresh.pk,
        fresh.owner_id,
        fresh.name,
        fresh.color,
        fresh.created_at,
    )


def test_only_the_owner_s_tags_can_be_set(number, conversation, charlie):
    other = wa_services.session_create(owner=charlie, name="Other")
    theirs = services.tag_create(session=other, name="theirs")
    ours = services.tag_create(session=number, name="ours")
    with pytest.raises(ValidationError):
        services.conversation_tags_set(conversation=conversation, tag_ids=[theirs.pk])
    with pytest.raises(ValidationError):
        services.contact_tags_set(contact=conversation.contact, tag_ids=[ours.pk, theirs.pk])
    services.conversation_tags_set(conversation=conversation, tag_ids=[ours.pk])
    assert list(conversation.tags.all()) == [ours]


def test_the_inbox_filters_by_a_tag_on_the_conversation_or_its_contact(number, bob):
    a = services.message_receive(session=number, msg=inbound(phone="5511900000001")).conversation
    b = services.message_receive(session=number, msg=inbound(phone="5511900000002")).conversation
    services.message_receive(session=number, msg=inbound(phone="5511900000003"))
    vip = services.tag_create(session=number, name="vip")
    services.conversation_tags_set(conversation=a, tag_ids=[vip.pk])
    services.contact_tags_set(contact=b.contact, tag_ids=[vip.pk])
    rows = selectors.conversation_list(user=bob, filters=ConversationFilters(tag_id=vip.pk))
    assert {r.pk for r in rows} == {a.pk, b.pk}
    # the rows carry their tags, loaded with the page
    assert [t.name for t in rows[0].tags.all()] + [t.name for t in rows[0].contact.tags.all()]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_filters_by_tag_and_escapes_tag_names(number, conversation, bob):
    other = services.message_receive(session=number, msg=inbound(phone="5511900000009"))
    tag = services.tag_create(session=number, name="<b>x</b>")
    services.conversation_tags_set(conversation=conversation, tag_ids=[tag.pk])
    page = _client(bob).get(f"/?tag={tag.pk}").content.decode()
    assert f'id="conversation-{conversation.pk}"' in page
    assert f'id="conversation-{other.conversation.pk}"' not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    thread = _client(bob).get(f"/conversations/{conversation.pk}/").content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in thread and "<b>x</b>" not in thread


def test_the_page_adds_and_removes_tags_on_the_conversation_and_contact(conversation, bob):
    client = _client(bob)
    url = f"/conversations/{conversation.pk}/tags/"
    answer = client.post(url, {"target": "conversation", "action": "add", "name": "urgent"})
    assert answer.status_code == 302
    tag = Tag.objects.get(name="urgent")
    assert list(conversation.tags.all()) == [tag]
    client.post(url, {"target": "contact", "action": "add", "name": "urgent"}, HTTP_HX_REQUEST="1")
    assert list(conversation.contact.tags.all()) == [tag]
    editor = client.get(url + "?target=contact").content.decode()
    assert 'id="tags-contact"' in editor and "urgent" in editor
    client.post(url, {"target": "conversation", "action": "remove", "tag": tag.pk})
    assert not conversation.tags.exists()


def test_the_page_writes_a_note_and_shows_it_as_a_note(conversation, bob):
    client = _client(bob)
    answer = client.post(f"/conversations/{conversation.pk}/note/", {"text": "<i>hi</i> @alice"})
    assert answer.status_code == 201
    body = answer.json()["message"]
    assert body["direction"] == "NOTA"
    assert 'class="msg note' in body["html"] and "&lt;i&gt;" in body["html"]
    assert NoteMention.objects.get().user.username == "alice"


def test_someone_who_does_not_work_the_number_gets_404_on_every_team_page(conversation, charlie):
    client = _client(charlie)
    base = f"/conversations/{conversation.pk}"
    assert client.post(f"{base}/note/", {"text": "x"}).status_code == 404
    assert client.post(f"{base}/tags/", {"action": "add", "name": "x"}).status_code == 404
    assert client.get(f"{base}/tags/").status_code == 404
    assert client.post(f"{base}/mentions/read/").status_code == 404
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()
    assert not Tag.objects.exists()


# --- admin ---------------------------------------------------------------------------------


def test_admins_manage_tags_and_see_names_escaped(admin_client, number, alice):
    made = admin_client.post(
        "/admin/conversations/tag/add/",
        {"owner": alice.pk, "name": "<script>alert(1)</script>", "color": "pink"},
    )
    assert made.status_code == 302
    tag = Tag.objects.get()
    assert (tag.owner, tag.color) == (alice, "pink")
    listing = admin_client.get("/admin/conversations/tag/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "<script>alert(1)</script>" not in listing
    assert admin_client.get(f"/admin/conversations/tag/{tag.pk}/change/").status_code == 200
    # the same name (in any case) twice for one owner is refused
    again = admin_client.post(
        "/admin/conversations/tag/add/",
        {"owner": alice.pk, "name": "<SCRIPT>alert(1)</SCRIPT>", "color": "red"},
    )
    assert again.status_code == 200 and Tag.objects.count() == 1
