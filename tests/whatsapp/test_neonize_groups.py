"""Groups on the neonize gateway: group info and change events mapped from real neonize
protobufs, and GetGroupInfo through NeonizeSession (with a fake connected client)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from neonize.exc import GetGroupInfoError, GetProfilePictureError
from neonize.proto.Neonize_pb2 import (
    GroupAnnounce,
    GroupEphemeral,
    GroupIncognito,
    GroupInfo,
    GroupInfoEvent,
    GroupIsDefaultSub,
    GroupLinkedParent,
    GroupLocked,
    GroupName,
    GroupParent,
    GroupParticipant,
    GroupTopic,
    JoinedGroup,
    Picture,
    ProfilePictureInfo,
)

from tests.whatsapp.neonize_helpers import (
    EMPTY,
    PHONE,
    Recorder,
    call_event,
    config,
    jid,
    live_session,
)
from whatsapp.gateway import base
from whatsapp.gateway.neonize import NeonizeSession, groups
from whatsapp.gateway.neonize.mapping import map_group_event, map_group_info

GROUP = "120363025246125486"
GROUP_JID = f"{GROUP}@g.us"


def member(
    user: str = "", *, lid: str = "", phone: str = "", admin: bool = False, name: str = ""
) -> GroupParticipant:
    return GroupParticipant(
        JID=jid(user, "lid" if user == lid else "s.whatsapp.net") if user else EMPTY,
        LID=jid(lid, "lid") if lid else EMPTY,
        PhoneNumber=jid(phone) if phone else EMPTY,
        IsAdmin=admin,
        IsSuperAdmin=False,
        DisplayName=name,
        Error=0,
    )


def group_info(subject: str = "Suporte VIP", *members: GroupParticipant) -> GroupInfo:
    info = GroupInfo(
        OwnerJID=jid(PHONE),
        JID=jid(GROUP, "g.us"),
        OwnerPN=jid(PHONE),
        GroupName=GroupName(Name=subject, NameSetAt=1767225600, NameSetBy=jid(PHONE)),
        GroupTopic=GroupTopic(
            Topic="", TopicID="", TopicSetAt=0, TopicSetBy=EMPTY, TopicDeleted=False
        ),
        GroupLocked=GroupLocked(isLocked=False),
        GroupAnnounce=GroupAnnounce(IsAnnounce=False, AnnounceVersionID=""),
        GroupEphemeral=GroupEphemeral(IsEphemeral=False, DisappearingTimer=0),
        GroupIncognito=GroupIncognito(IsIncognito=False),
        GroupParent=GroupParent(IsParent=False, DefaultMembershipApprovalMode=""),
        GroupLinkedParent=GroupLinkedParent(LinkedParentJID=EMPTY),
        GroupIsDefaultSub=GroupIsDefaultSub(IsDefaultSubGroup=False),
        GroupCreated=1767225600,
        ParticipantVersionID="1",
        Participants=list(members),
    )
    # proto2: serialising proves every required field is set, as Go's would be.
    return GroupInfo.FromString(info.SerializeToString())


def info_event(**kwargs: Any) -> GroupInfoEvent:
    ev = GroupInfoEvent(
        JID=jid(GROUP, "g.us"),
        Notify="",
        Timestamp=1767225600,
        PrevParticipantsVersionID="1",
        ParticipantVersionID="2",
        JoinReason="",
        **kwargs,
    )
    return GroupInfoEvent.FromString(ev.SerializeToString())


def joined_event() -> JoinedGroup:
    ev = JoinedGroup(Reason="", Type="", CreateKey="", GroupInfo=group_info())
    return JoinedGroup.FromString(ev.SerializeToString())


def picture_event(user: str, server: str) -> Picture:
    ev = Picture(JID=jid(user, server), Author=jid(PHONE), Timestamp=1767225600, Remove=False)
    return Picture.FromString(ev.SerializeToString())


# --- mapping ---------------------------------------------------------------------------


def test_group_info_maps_subject_and_members_in_every_address_form() -> None:
    info = map_group_info(
        group_info(
            "Suporte VIP",
            member("5511988880001", admin=True, name="Ana"),  # a phone-number group
            member("99887766", lid="99887766", phone="5511977770002"),  # LID, phone known
            member("", lid="55443322"),  # LID only: WhatsApp hides the phone
        )
    )
    assert info == base.GroupInfo(
        jid=GROUP_JID,
        subject="Suporte VIP",
        participants=(
            base.GroupParticipant(
                jid="5511988880001@s.whatsapp.net", phone="5511988880001", is_admin=True, name="Ana"
            ),
            base.GroupParticipant(jid="99887766@lid", phone="5511977770002", lid="99887766@lid"),
            base.GroupParticipant(jid="55443322@lid", lid="55443322@lid"),
        ),
    )


def test_group_events_name_the_group_to_read_again() -> None:
    changed = base.GroupChanged(jid=GROUP_JID)
    assert map_group_event(info_event(Name=GroupName(Name="New", NameSetAt=1, NameSetBy=EMPTY)))
    assert map_group_event(info_event(Join=[jid("5511988880001")])) == changed
    assert map_group_event(joined_event()) == changed
    assert map_group_event(picture_event(GROUP, "g.us")) == changed
    # A contact changing their own picture is not about a group.
    assert map_group_event(picture_event("5511988880001", "s.whatsapp.net")) is None


def test_a_group_event_from_go_reaches_the_worker_as_group_changed(tmp_path: Path) -> None:
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    client = session._build_client(None)
    try:
        call_event(client, info_event(Leave=[jid("5511988880001")]), 22)
        call_event(client, picture_event("5511988880001", "s.whatsapp.net"), 23)
        call_event(client, joined_event(), 21)
        recorder.wait_for(lambda e: isinstance(e, base.GroupChanged), count=2)
        assert [e for e in recorder.events if isinstance(e, base.GroupChanged)] == [
            base.GroupChanged(jid=GROUP_JID),
            base.GroupChanged(jid=GROUP_JID),
        ]
    finally:
        session.stop(timeout=5)


# --- GetGroupInfo ----------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path):
    yield from live_session(tmp_path)


def test_group_info_without_a_picture_asked(live) -> None:
    session, fake, _ = live
    fake.group = group_info("Equipe", member("5511988880001", admin=True))
    info = session.handle(base.GetGroupInfo(jid=GROUP_JID))
    assert info.subject == "Equipe" and info.participants[0].is_admin
    assert (info.picture_id, info.picture_path) == ("", "")
    assert [c[0] for c in fake.calls] == ["get_group_info"]
    asked = fake.calls[0][1][0]
    assert (asked.User, asked.Server) == (GROUP, "g.us")


def test_group_picture_is_fetched_from_whatsapp_into_the_file_asked(
    live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fake, _ = live
    fake.group = group_info()
    fake.picture = ProfilePictureInfo(URL="https://pps.whatsapp.net/v/t61/abc.jpg", ID="1700")
    fetched: list[str] = []

    def urlopen(request: Any, timeout: float) -> io.BytesIO:
        fetched.append(request.full_url)
        return io.BytesIO(b"\xff\xd8jpeg")

    monkeypatch.setattr(groups.urllib.request, "urlopen", urlopen)
    dest = tmp_path / "media" / "groups" / "1.jpg"
    info = session.get_group_info(base.GetGroupInfo(jid=GROUP_JID, picture_dest=str(dest)))
    assert (info.picture_id, info.picture_path) == ("1700", str(dest))
    assert dest.read_bytes() == b"\xff\xd8jpeg"
    assert fetched == ["https://pps.whatsapp.net/v/t61/abc.jpg"]
    params = fake.calls[1][1][1]
    assert (params.Preview, params.ExistingID) == (False, "")

    # The same picture again: WhatsApp answers no URL, nothing is fetched.
    fake.picture = ProfilePictureInfo()
    again = session.get_group_info(
        base.GetGroupInfo(jid=GROUP_JID, picture_dest=str(dest), known_picture_id="1700")
    )
    assert (again.picture_id, again.picture_path) == ("1700", "")
    assert fake.calls[-1][1][1].ExistingID == "1700" and len(fetched) == 1


def test_no_picture_removed_picture_and_lookup_trouble(live, tmp_path: Path) -> None:
    session, fake, _ = live
    fake.group = group_info()
    dest = str(tmp_path / "p.jpg")
    fake.picture_error = GetProfilePictureError("the user has hidden their profile picture: 401")
    cmd = base.GetGroupInfo(jid=GROUP_JID, picture_dest=dest, known_picture_id="1700")
    assert session.get_group_info(cmd).picture_id == ""  # gone: the stored one goes too
    fake.picture_error = GetProfilePictureError("websocket disconnected")
    assert session.get_group_info(cmd).picture_id == "1700"  # unknown: keep it
    assert not Path(dest).exists()


def test_only_whatsapp_https_picture_urls_are_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"x" * 10))
    dest = tmp_path / "p.jpg"
    for url in (
        "http://pps.whatsapp.net/a.jpg",
        "https://evil.example/a.jpg",
        "https://whatsapp.net.evil.example/a.jpg",
        "file:///etc/passwd",
    ):
        with pytest.raises(ValueError):
            groups.download_picture(url, dest)
    assert groups.download_picture("https://pps.whatsapp.net/a.jpg", dest) == 10
    info = base.GroupInfo(jid=GROUP_JID, subject="G", picture_id="9")
    # A picture that cannot be fetched leaves the group's info without it.
    assert groups.with_picture(info, "https://evil.example/a.jpg", str(dest)).picture_id == ""


def test_group_info_errors_are_classified(live, tmp_path: Path) -> None:
    session, fake, _ = live
    fake.group_error = GetGroupInfoError("not-authorized: you are not a participant (403)")
    with pytest.raises(base.GatewayError) as info:
        session.get_group_info(base.GetGroupInfo(jid=GROUP_JID))
    assert info.value.transient is False
    fake.group_error = GetGroupInfoError("websocket not connected")
    with pytest.raises(base.GatewayError) as info:
        session.get_group_info(base.GetGroupInfo(jid=GROUP_JID))
    assert info.value.transient is True
    with pytest.raises(base.GatewayError):
        session.get_group_info(base.GetGroupInfo(jid="not a jid@"))


def test_group_info_when_not_connected_is_transient(tmp_path: Path) -> None:
    session = NeonizeSession(config(tmp_path), Recorder())
    with pytest.raises(base.GatewayError) as info:
        session.handle(base.GetGroupInfo(jid=GROUP_JID))
    assert info.value.transient is True
