from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from conversations import selectors
from conversations.models import Conversation, Message
from whatsapp.selectors import session_list, user_can_see_session

pytestmark = pytest.mark.django_db


def test_owner_and_agent_see_the_number_and_outsider_does_not(number, alice, bob, charlie):
    assert list(session_list(user=alice)) == [number]
    assert list(session_list(user=bob)) == [number]
    assert list(session_list(user=charlie)) == []
    assert user_can_see_session(bob, number.pk)
    assert not user_can_see_session(charlie, number.pk)


def test_anonymous_sees_nothing(number, conversation):
    from django.contrib.auth.models import AnonymousUser

    assert list(session_list(user=AnonymousUser())) == []
    assert selectors.conversation_list(user=AnonymousUser()) == []


def test_conversations_follow_the_access_rule(number, conversation, alice, bob, charlie):
    assert selectors.conversation_list(user=alice) == [conversation]
    assert selectors.conversation_list(user=bob) == [conversation]
    assert selectors.conversation_list(user=charlie) == []
    with pytest.raises(Conversation.DoesNotExist):
        selectors.conversation_get(user=charlie, conversation_id=conversation.pk)


def test_rows_given_the_numbers_take_them_and_still_follow_the_access_rule(
    number, conversation, bob, charlie, django_assert_num_queries
):
    numbers = {s.pk: s for s in session_list(user=bob)}
    name = conversation.contact.display_name
    with django_assert_num_queries(2):  # the rows; their tags and their contacts' tags
        rows = selectors.conversation_list(user=bob, sessions=numbers)
        assert rows == [conversation]
        assert rows[0].session is numbers[number.pk]
        assert rows[0].contact.display_name == name
    # the numbers are only a source of rows' numbers, never of what one may see
    assert selectors.conversation_list(user=charlie, sessions=numbers) == []
    # a number missing from them is loaded when read
    (row,) = selectors.conversation_list(user=bob, sessions={})
    with django_assert_num_queries(1):
        assert row.session.name == number.name


def test_the_bare_access_check_follows_the_same_rule(number, conversation, alice, bob, charlie):
    from django.contrib.auth.models import AnonymousUser

    for user in (alice, bob):
        assert selectors.conversation_access(user=user, conversation_id=conversation.pk) == (
            conversation
        )
    for user in (charlie, AnonymousUser()):
        with pytest.raises(Conversation.DoesNotExist):
            selectors.conversation_access(user=user, conversation_id=conversation.pk)


def test_a_removed_agent_loses_access(number, conversation, bob):
    from whatsapp import services as wa

    wa.session_agent_remove(session=number, user=bob)
    assert selectors.conversation_list(user=bob) == []
    with pytest.raises(Conversation.DoesNotExist):
        selectors.conversation_access(user=bob, conversation_id=conversation.pk)


def test_media_is_served_only_to_allowed_users(client, number, conversation, bob, charlie):
    msg = Message.objects.get()
    msg.media.save("photo.png", ContentFile(b"\x89PNG fake"), save=False)
    msg.media_status = Message.MediaStatus.READY
    msg.mime_type = "image/png"
    msg.save()
    url = f"/conversations/media/{msg.pk}/"
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    client.force_login(bob)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_numbers_read_for_a_user_are_named_by_id_and_only_for_that_user(
    number, conversation, alice, bob, charlie
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.queue_selectors import queue_visible_list
    from conversations.services import QueueFields, queue_create
    from whatsapp import services as wa
    from whatsapp.selectors import sessions_seen

    other = wa.session_create(owner=charlie, name="Elsewhere")
    seen = sessions_seen(user=bob)
    assert seen == [number]
    with CaptureQueriesContext(connection) as read:
        assert selectors.conversation_list(user=bob, sessions={s.pk: s for s in seen}) == [
            conversation
        ]
        assert selectors.unread_counts(user=bob, sessions=seen) == {conversation.pk: 1}
        assert (
            selectors.conversation_get(user=bob, conversation_id=conversation.pk, sessions=seen)
            == conversation
        )
    # the statements name bob's numbers instead of composing the rule again
    assert not any("session_agents" in q["sql"] for q in read.captured_queries)

    # bob's numbers decide nothing for anyone else: charlie still gets the rule
    assert selectors.conversation_list(user=charlie, sessions={s.pk: s for s in seen}) == []
    assert selectors.unread_counts(user=charlie, sessions=seen) == {}
    with pytest.raises(Conversation.DoesNotExist):
        selectors.conversation_get(user=charlie, conversation_id=conversation.pk, sessions=seen)
    # nor do numbers read some other way, even of the right user's
    unmarked = list(session_list(user=bob))
    with CaptureQueriesContext(connection) as read:
        assert selectors.unread_counts(user=bob, sessions=unmarked) == {conversation.pk: 1}
    assert "session_agents" in read.captured_queries[0]["sql"]
    assert selectors.unread_counts(user=charlie, sessions=sessions_seen(user=charlie)) == {}

    # queues: the owner sees every queue of her number, the agent only those he is in
    mine = queue_create(session=number, fields=QueueFields(name="Sales", agent_ids=(bob.pk,)))
    queue_create(session=number, fields=QueueFields(name="Billing"))
    queue_create(session=other, fields=QueueFields(name="Theirs"))
    for user in (alice, bob, charlie):
        by_rule = [q.name for q in queue_visible_list(user=user)]
        assert [
            q.name for q in queue_visible_list(user=user, sessions=sessions_seen(user=user))
        ] == (by_rule)
        assert [q.name for q in queue_visible_list(user=user, sessions=seen)] == by_rule
    assert [q.pk for q in queue_visible_list(user=bob, sessions=seen)] == [mine.pk]
    assert len(queue_visible_list(user=alice, sessions=sessions_seen(user=alice))) == 2


def test_mentions_read_with_the_numbers_seen(number, conversation, alice, bob, charlie):
    from conversations.services import note_add
    from whatsapp import services as wa
    from whatsapp.selectors import sessions_seen

    note_add(user=alice, conversation=conversation, text="@bob look")
    seen = sessions_seen(user=bob)
    assert selectors.mentioned_conversation_ids(user=bob, sessions=seen) == [conversation.pk]
    # a number he no longer works: not once his numbers are read again
    wa.session_agent_remove(session=number, user=bob)
    assert selectors.mentioned_conversation_ids(user=bob, sessions=sessions_seen(user=bob)) == []
    assert selectors.mentioned_conversation_ids(user=charlie, sessions=seen) == []
