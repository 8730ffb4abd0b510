"""Groups on the simulated network: set through the control API, announced to the linked
devices of their members, and read by the gateway session (subject, members, picture)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.whatsapp.simulator.helpers import CONTACT, PHONE, Device, post_error
from whatsapp.gateway import base
from whatsapp.simulator import ControlClient

GROUP_JID = "120363025246125486@g.us"
JPEG = b"\xff\xd8\xff\xe0group-picture"


def set_group(api: ControlClient, **fields) -> dict:
    return api.post("/api/groups", {"jid": GROUP_JID, **fields})


def test_a_group_is_announced_to_its_members_and_read_back(
    api: ControlClient, linked: Device, tmp_path: Path
) -> None:
    since = linked.events.mark()
    answer = set_group(
        api,
        subject="Suporte VIP",
        participants=[
            {"phone": PHONE, "admin": True},
            {"phone": CONTACT, "name": "Maria"},
            {"lid": "99887766@lid"},
        ],
        picture_base64=base64.b64encode(JPEG).decode(),
    )
    assert answer == {"jid": GROUP_JID, "notified": 1}
    assert linked.events.wait_for(base.GroupChanged, since=since) == base.GroupChanged(GROUP_JID)

    dest = tmp_path / "media" / "g.jpg"
    info = linked.session.handle(base.GetGroupInfo(jid=GROUP_JID, picture_dest=str(dest)))
    assert info.subject == "Suporte VIP"
    assert info.participants == (
        base.GroupParticipant(jid=f"{PHONE}@s.whatsapp.net", phone=PHONE, is_admin=True),
        base.GroupParticipant(jid=f"{CONTACT}@s.whatsapp.net", phone=CONTACT, name="Maria"),
        base.GroupParticipant(jid="99887766@lid", lid="99887766@lid"),
    )
    assert info.picture_id and info.picture_path == str(dest)
    assert dest.read_bytes() == JPEG

    # The picture we have already is not fetched again.
    known = base.GetGroupInfo(
        jid=GROUP_JID, picture_dest=str(tmp_path / "again.jpg"), known_picture_id=info.picture_id
    )
    again = linked.session.get_group_info(known)
    assert (again.picture_id, again.picture_path) == (info.picture_id, "")
    assert not (tmp_path / "again.jpg").exists()


def test_a_change_keeps_what_it_leaves_out(api: ControlClient, linked: Device) -> None:
    set_group(
        api,
        subject="Old",
        participants=[{"phone": PHONE}],
        picture_base64=base64.b64encode(JPEG).decode(),
    )
    since = linked.events.mark()
    set_group(api, subject="New")
    linked.events.wait_for(base.GroupChanged, since=since)
    info = linked.session.get_group_info(base.GetGroupInfo(jid=GROUP_JID))
    assert info.subject == "New" and len(info.participants) == 1 and info.picture_id
    set_group(api, picture_base64="")  # the picture removed
    assert linked.session.get_group_info(base.GetGroupInfo(jid=GROUP_JID)).picture_id == ""


def test_a_group_the_number_is_not_in_is_not_announced_to_it(
    api: ControlClient, linked: Device
) -> None:
    assert set_group(api, subject="Others", participants=[{"phone": CONTACT}])["notified"] == 0


def test_an_unknown_group_is_an_error_not_worth_retrying(linked: Device) -> None:
    with pytest.raises(base.GatewayError) as info:
        linked.session.get_group_info(base.GetGroupInfo(jid="999@g.us"))
    assert info.value.transient is False


@pytest.mark.parametrize(
    "body",
    [
        {"jid": "5511@s.whatsapp.net"},
        {"jid": GROUP_JID, "subject": 5},
        {"jid": GROUP_JID, "participants": "everyone"},
        {"jid": GROUP_JID, "participants": [{"name": "nobody"}]},
        {"jid": GROUP_JID, "participants": [{"lid": "123@s.whatsapp.net"}]},
        {"jid": GROUP_JID, "picture_base64": "not base64!"},
    ],
)
def test_bad_groups_are_refused(api: ControlClient, body: dict) -> None:
    assert post_error(api, "/api/groups", body).status == 400
