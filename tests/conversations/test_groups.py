"""Groups in the inbox: their info stored (subject, members, picture), who may see the
picture, the members' names in the contact pane and on messages, and the list's filter."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from conversations import selectors, services
from conversations.models import Contact, Conversation, GroupParticipant
from tests.factories import inbound
from whatsapp import selectors as whatsapp_selectors
from whatsapp import services as whatsapp_services
from whatsapp.gateway import base

pytestmark = pytest.mark.django_db

GROUP = "120363000000000001@g.us"
ANA = "5511988880001@s.whatsapp.net"
BETO = "5511977770002@s.whatsapp.net"


def group_message(number, *, sender: str = ANA, name: str = "Ana", text: str = "oi"):
    return services.message_receive(
        session=number,
        msg=inbound(chat=GROUP, sender=sender, push_name=name, is_group=True, text=text),
    )


def info(subject: str = "Suporte VIP", **kwargs) -> base.GroupInfo:
    participants = kwargs.pop(
        "participants",
        (
            base.GroupParticipant(jid=ANA, phone="5511988880001", is_admin=True),
            base.GroupParticipant(jid=BETO, phone="5511977770002"),
            base.GroupParticipant(jid="99887766@lid", lid="99887766@lid"),
        ),
    )
    return base.GroupInfo(jid=GROUP, subject=subject, participants=participants, **kwargs)


def picture(name: str) -> str:
    return default_storage.save(name, ContentFile(b"\xff\xd8jpeg"))


def test_info_is_stored_and_named_after_the_subject(number, django_capture_on_commit_callbacks):
    group = group_message(number).conversation.contact
    assert services.group_known(session_id=number.pk, jid=GROUP) == (group.pk, "")
    assert services.groups_without_info(session_id=number.pk) == [GROUP]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        stored = services.group_info_store(session=number, info=info())
    assert callbacks, "the pages hear of it"
    assert stored is not None and stored.display_name == "Suporte VIP"
    assert services.groups_without_info(session_id=number.pk) == []
    assert list(GroupParticipant.objects.order_by("pk").values_list("jid", "is_admin")) == [
        (ANA, True),
        (BETO, False),
        ("99887766@lid", False),
    ]
    # The agents' own name for the group still wins.
    services.contact_update(contact=stored, saved_name="VIPs", notes="")
    assert Contact.objects.get(pk=group.pk).display_name == "VIPs"


def test_members_are_replaced_and_the_picture_follows_whatsapp(number):
    group_message(number)
    first = picture(f"groups/{number.pk}/1-a.jpg")
    services.group_info_store(session=number, info=info(picture_id="P1"), picture_name=first)
    group = Contact.objects.get(jid=GROUP)
    assert (group.group_picture.name, group.group_picture_id) == (first, "P1")
    assert services.group_known(session_id=number.pk, jid=GROUP) == (group.pk, "P1")

    # Same picture (nothing fetched): kept. Someone left: gone from the list.
    one = (base.GroupParticipant(jid=BETO),)
    services.group_info_store(session=number, info=info(participants=one, picture_id="P1"))
    group.refresh_from_db()
    assert group.group_picture.name == first
    assert list(GroupParticipant.objects.values_list("jid", flat=True)) == [BETO]

    # A new picture replaces the old file; no picture removes it.
    second = picture(f"groups/{number.pk}/1-b.jpg")
    services.group_info_store(session=number, info=info(picture_id="P2"), picture_name=second)
    group.refresh_from_db()
    assert group.group_picture.name == second
    services.group_info_store(session=number, info=info())
    group.refresh_from_db()
    assert (group.group_picture.name, group.group_picture_id) == ("", "")


def test_info_for_a_group_the_number_does_not_have_is_dropped(number):
    fetched = picture(f"groups/{number.pk}/9-x.jpg")
    assert services.group_info_store(session=number, info=info(), picture_name=fetched) is None
    assert not Contact.objects.filter(jid=GROUP).exists()


def test_a_number_that_ignores_groups_reads_none(number):
    group_message(number)
    whatsapp_services.session_update_options(session=number, ignore_groups=True)
    assert services.group_known(session_id=number.pk, jid=GROUP) is None
    assert services.groups_without_info(session_id=number.pk) == []


def test_members_are_named_by_the_agents_then_whatsapp_then_their_messages(
    number, django_assert_num_queries
):
    group_message(number, sender=ANA, name="Ana (old)")
    group_message(number, sender=ANA, name="Ana Paula")
    group_message(number, sender="99887766@lid", name="Lia")
    services.message_receive(session=number, msg=inbound(phone="5511977770002", text="dm"))
    beto = Contact.objects.get(jid=BETO)
    services.contact_update(contact=beto, saved_name="Beto (cliente)", notes="")
    stored = info(
        participants=(
            base.GroupParticipant(jid=ANA, phone="5511988880001", is_admin=True),
            base.GroupParticipant(jid=BETO, phone="5511977770002", name="Roberto"),
            base.GroupParticipant(jid="99887766@lid", lid="99887766@lid"),
            base.GroupParticipant(jid="5511966660003@s.whatsapp.net", phone="5511966660003"),
        )
    )
    group = services.group_info_store(session=number, info=stored)
    assert group is not None
    with django_assert_num_queries(3):
        members = selectors.group_participants(group=group)
    assert [(m.name, m.phone, m.is_admin) for m in members] == [
        ("Ana Paula", "5511988880001", True),
        ("Beto (cliente)", "5511977770002", False),
        ("Lia", "", False),
        ("", "5511966660003", False),
    ]


# --- pages ---------------------------------------------------------------------------


def test_the_picture_is_served_only_to_who_may_see_the_group(client, number, bob, charlie):
    group_message(number)
    name = picture(f"groups/{number.pk}/1-a.jpg")
    services.group_info_store(session=number, info=info(picture_id="P1"), picture_name=name)
    group = Contact.objects.get(jid=GROUP)
    url = f"/conversations/groups/{group.pk}/picture/"
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    client.force_login(bob)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xff\xd8jpeg"
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    direct = services.message_receive(session=number, msg=inbound(text="dm"))
    assert (
        client.get(f"/conversations/groups/{direct.conversation.contact_id}/picture/").status_code
        == 404
    )


def test_the_group_thread_shows_subject_picture_members_and_senders(client, number, bob):
    group_message(number, sender=ANA, name="Ana")
    group_message(number, sender=BETO, name="")  # no name: the phone
    name = picture(f"groups/{number.pk}/1-a.jpg")
    services.group_info_store(session=number, info=info(picture_id="P1"), picture_name=name)
    conversation = Conversation.objects.get(contact__jid=GROUP)
    client.force_login(bob)
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert page.count("Suporte VIP") >= 3  # list row, header, contact pane
    group = conversation.contact
    assert f'src="/conversations/groups/{group.pk}/picture/?v=P1"' in page
    assert '<div class="sender">Ana</div>' in page
    assert '<div class="sender">+5511977770002</div>' in page
    assert "3 participants" in page
    assert page.count('class="admin-badge"') == 1
    assert "+5511988880001" in page and "Hidden number" in page


def test_the_list_filters_groups_and_direct_and_hides_ignored_groups(client, number, bob):
    group_message(number, text="grupo")
    services.message_receive(session=number, msg=inbound(text="direto"))
    client.force_login(bob)

    def rows(query: str = "") -> str:
        return client.get(f"/{query}").content.decode()

    assert "grupo" in rows() and "direto" in rows()
    assert "grupo" in rows("?kind=groups") and "direto" not in rows("?kind=groups")
    assert "direto" in rows("?kind=direct") and "grupo" not in rows("?kind=direct")
    assert "grupo" in rows("?kind=nonsense")
    whatsapp_services.session_update_options(session=number, ignore_groups=True)
    assert "grupo" not in rows() and "grupo" not in rows("?kind=groups")
    direct_only = {Conversation.objects.get(contact__is_group=False).pk: 1}
    assert selectors.unread_counts(user=bob) == direct_only
    # the inbox page passes the numbers it listed: the same counts
    numbers = list(whatsapp_selectors.session_list(user=bob))
    assert selectors.unread_counts(user=bob, sessions=numbers) == direct_only
    whatsapp_services.session_update_options(session=number, ignore_groups=False)
    numbers = list(whatsapp_selectors.session_list(user=bob))
    both = selectors.unread_counts(user=bob)
    assert len(both) == 2 and selectors.unread_counts(user=bob, sessions=numbers) == both
