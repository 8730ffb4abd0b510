"""The worker end to end, groups: a group's subject, members and picture read when its
conversation first appears and again when WhatsApp says it changed, never in the way of
its messages. Simulator network -> child process -> worker -> database."""

from __future__ import annotations

import asyncio
import base64

import pytest
from django.core.files.storage import default_storage

from conversations.models import Contact, Conversation, GroupParticipant, Message
from tests.whatsapp.conftest import PNG, link, running_worker, wait_for
from whatsapp import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

PHONE = "5511900000001"
GROUP = "120363000000000001@g.us"


def group_contact() -> Contact | None:
    return Contact.objects.filter(jid=GROUP, is_group=True).first()


def members() -> list[tuple[str, str, bool]]:
    return list(GroupParticipant.objects.order_by("jid").values_list("jid", "name", "is_admin"))


async def test_a_new_group_gets_its_info_and_follows_its_changes(simulator, linked):
    c = simulator.control
    await asyncio.to_thread(
        c.post,
        "/api/groups",
        {
            "jid": GROUP,
            "subject": "Suporte VIP",
            "participants": [
                {"phone": PHONE, "admin": True},
                {"phone": "5511988880001", "name": "Ana"},
            ],
            "picture_base64": base64.b64encode(PNG).decode(),
        },
    )
    async with running_worker():
        await link(simulator, linked, PHONE)
        await asyncio.to_thread(
            c.send_message,
            to=PHONE,
            **{"from": "5511988880001"},
            push_name="Ana",
            text="no grupo",
            group={"jid": GROUP},
        )
        await wait_for(lambda: Message.objects.filter(body="no grupo").exists(), what="message")
        await wait_for(
            lambda: (g := group_contact()) is not None and g.group_info_at is not None,
            what="the group's info",
        )

        def first_read() -> str:
            group = group_contact()
            assert group is not None
            assert group.group_subject == "Suporte VIP" and group.display_name == "Suporte VIP"
            assert members() == [
                (f"{PHONE}@s.whatsapp.net", "", True),
                ("5511988880001@s.whatsapp.net", "Ana", False),
            ]
            assert group.group_picture.name.startswith(f"groups/{linked.pk}/{group.pk}-")
            with group.group_picture.open("rb") as f:
                assert f.read() == PNG
            return group.group_picture.name

        old_picture = await asyncio.to_thread(first_read)

        # WhatsApp says the group changed: read again, the old picture file goes.
        await asyncio.to_thread(
            c.post,
            "/api/groups",
            {
                "jid": GROUP,
                "subject": "Suporte Ouro",
                "participants": [{"phone": PHONE}, {"phone": "5511977770002", "admin": True}],
                "picture_base64": "",
            },
        )
        await wait_for(
            lambda: group_contact().group_subject == "Suporte Ouro",  # type: ignore[union-attr]
            what="the new subject",
        )

        def second_read() -> None:
            group = group_contact()
            assert group is not None and group.group_picture.name == ""
            assert members() == [
                (f"{PHONE}@s.whatsapp.net", "", False),
                ("5511977770002@s.whatsapp.net", "", True),
            ]
            assert not default_storage.exists(old_picture)

        await asyncio.to_thread(second_read)


async def test_groups_without_info_are_read_on_connect_and_ignored_numbers_are_not(
    simulator, linked
):
    c = simulator.control
    await asyncio.to_thread(
        c.post, "/api/groups", {"jid": GROUP, "subject": "Antigo", "participants": []}
    )
    # Known from before (history, an older run) but never read.
    await asyncio.to_thread(Contact.objects.create, session=linked, jid=GROUP, is_group=True)

    await asyncio.to_thread(
        lambda: Conversation.objects.create(session=linked, contact=group_contact())
    )
    async with running_worker():
        await link(simulator, linked, PHONE)
        await wait_for(
            lambda: group_contact().group_subject == "Antigo",  # type: ignore[union-attr]
            what="the group read on connect",
        )
        # A number that ignores groups reads none of them.
        await asyncio.to_thread(
            lambda: services.session_update_options(session=linked, ignore_groups=True)
        )
        await asyncio.to_thread(
            c.post,
            "/api/groups",
            {"jid": GROUP, "subject": "Ignorado", "participants": [{"phone": PHONE}]},
        )
        await asyncio.sleep(1.0)
        assert (await asyncio.to_thread(group_contact)).group_subject == "Antigo"  # type: ignore[union-attr]


async def test_a_group_whatsapp_will_not_describe_still_gets_its_messages(simulator, linked):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, PHONE)
        for text in ("um", "dois"):
            await asyncio.to_thread(
                c.send_message,
                to=PHONE,
                **{"from": "5511988880001"},
                text=text,
                group={"jid": "120363000000000009@g.us"},
            )
        await wait_for(lambda: Message.objects.count() == 2, what="both messages")
        group = await asyncio.to_thread(lambda: Contact.objects.get(jid="120363000000000009@g.us"))
        assert group.group_info_at is None and group.display_name == "120363000000000009"


async def test_a_change_before_the_group_s_first_message_does_not_use_up_its_read(
    simulator, linked
):
    c = simulator.control
    async with running_worker():
        await link(simulator, linked, PHONE)
        # The number is told of the group (it joined) before anyone writes in it.
        group = {"jid": GROUP, "subject": "Recém-criado", "participants": [{"phone": PHONE}]}
        assert (await asyncio.to_thread(c.post, "/api/groups", group))["notified"] == 1
        await asyncio.sleep(0.5)
        await asyncio.to_thread(
            c.send_message,
            to=PHONE,
            **{"from": "5511988880001"},
            text="primeira",
            group={"jid": GROUP},
        )
        await wait_for(
            lambda: (g := group_contact()) is not None and g.group_subject == "Recém-criado",
            what="the group's info after its first message",
        )
