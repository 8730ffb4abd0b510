"""NeonizeSession, fed real neonize protobuf events, with the real Go core offline.

Nothing here needs Django. Tests that let Go touch a device store it might
abort on run in a subprocess, so an abort fails the test instead of pytest.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from neonize._binder import func_string
from neonize.events import ConnectedEv, LoggedOutEv, PairStatusEv, ReceiptEv
from neonize.exc import DownloadError
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ImageMessage,
    Message,
    ReactionMessage,
)
from neonize.utils.enum import ReceiptType

from tests.whatsapp.neonize_helpers import (
    PHONE,
    Recorder,
    call_event,
    config,
    is_state,
    jid,
    live_session,
    message_event,
    receipt_event,
)
from whatsapp.gateway import base
from whatsapp.gateway.neonize import NeonizeSession
from whatsapp.gateway.neonize.ffi import FFI_LOCK

ROOT = Path(__file__).resolve().parents[2]


# --- the session: the real Go -> Python callback path --------------------------------


def call_string(fn: Callable[..., None], text: str) -> None:
    buf = ctypes.create_string_buffer(text.encode())
    func_string(fn)(None, ctypes.addressof(buf))


@pytest.fixture
def wired(tmp_path: Path):
    """A session with its dispatcher and a client wired to it, never connected."""
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    client = session._build_client(None)
    yield session, client, recorder
    session.stop(timeout=5)


def test_go_callback_delivers_a_mapped_message_on_the_dispatcher(wired) -> None:
    session, client, recorder = wired
    image = ImageMessage(caption="cap", mimetype="image/jpeg", directPath="/v/x", mediaKey=b"k")
    call_event(client, message_event(Message(imageMessage=image)), 17)
    call_event(client, receipt_event(ReceiptEv.ReceiptType.READ), 18)
    ((_, thread, msg),) = recorder.wait_for(lambda e: isinstance(e, base.InboundMessage))
    assert (msg.kind, msg.text, msg.message_id) == (base.MessageKind.IMAGE, "cap", "3EB0AAA111")
    assert thread.startswith("neonize-dispatch-")
    ((_, _, receipt),) = recorder.wait_for(lambda e: isinstance(e, base.Receipt))
    assert receipt.status == "read"
    # A reaction reaches the session but is not an inbox message.
    call_event(client, message_event(Message(reactionMessage=ReactionMessage(text="x"))), 17)
    call_event(client, message_event(Message(conversation="after"), msg_id="3EB0B"), 17)
    recorder.wait_for(lambda e: isinstance(e, base.InboundMessage), count=2)
    inbound = [e for e in recorder.events if isinstance(e, base.InboundMessage)]
    assert [m.message_id for m in inbound] == ["3EB0AAA111", "3EB0B"]


def test_slow_emit_does_not_stall_go(tmp_path: Path) -> None:
    recorder = Recorder(delay=0.2)
    session = NeonizeSession(config(tmp_path), recorder)
    session._start_dispatcher()
    client = session._build_client(None)
    started = time.monotonic()
    for i in range(5):
        call_event(client, message_event(Message(conversation=str(i)), msg_id=f"M{i}"), 17)
    assert time.monotonic() - started < 0.15  # Go's thread only enqueued
    recorder.wait_for(lambda e: isinstance(e, base.InboundMessage), count=5)
    assert [e.text for e in recorder.events] == ["0", "1", "2", "3", "4"]
    session.stop(timeout=5)


def test_qr_codes_then_pair_success(wired) -> None:
    session, client, recorder = wired
    call_string(client._NewClient__onQr, "2@first-code")
    call_string(client._NewClient__onQr, "2@second-code")
    recorder.wait_for(lambda e: isinstance(e, base.QRCode), count=2)
    assert recorder.events == [
        base.StateChanged(base.ConnState.WAITING_QR),
        base.QRCode("2@first-code"),
        base.QRCode("2@second-code"),
    ]
    assert session._qr_seen

    paired = PairStatusEv(
        ID=jid("5511900000000", device=12),
        BusinessName="",
        Platform="android",
        Status=PairStatusEv.PStatus.SUCCESS,
    )
    call_event(client, paired, 2)
    ((_, _, event),) = recorder.wait_for(lambda e: isinstance(e, base.Paired))
    assert event == base.Paired(
        jid="5511900000000:12@s.whatsapp.net", phone="5511900000000", push_name=""
    )
    # The next connect must resume this device instead of pairing another one.
    assert client.new_device is False
    assert (client.jid.User, client.jid.Device) == ("5511900000000", 12)

    call_event(client, ConnectedEv(status=True), 3)
    recorder.wait_for(is_state(base.ConnState.CONNECTED))
    # Go has no such client (connect() never ran): is_connected must not ask it.
    assert session.is_connected() is False


def test_qr_timeout_expires_pairing_and_stops(wired) -> None:
    session, client, recorder = wired
    call_string(client._NewClient__onQr, "2@code")
    call_string(client._NewClient__onLoginStatus, "timeout")
    recorder.wait_for(is_state(base.ConnState.STOPPED))
    assert recorder.states() == [
        base.ConnState.WAITING_QR,
        base.ConnState.PAIRING_EXPIRED,
        base.ConnState.STOPPED,
    ]


def test_logged_out_event_reports_and_stops(wired) -> None:
    session, client, recorder = wired
    call_event(client, LoggedOutEv(OnConnect=True, Reason=2), 6)
    recorder.wait_for(is_state(base.ConnState.STOPPED))
    assert recorder.states() == [base.ConnState.LOGGED_OUT, base.ConnState.STOPPED]
    assert "LOGGED_OUT" in recorder.events[0].detail
    # Nothing follows STOPPED, even if Go still calls back.
    call_event(client, message_event(Message(conversation="late")), 17)
    time.sleep(0.1)
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)


# --- commands ------------------------------------------------------------------------


def assert_transient(fn: Callable[[], object]) -> None:
    with pytest.raises(base.GatewayError) as info:
        fn()
    assert info.value.transient is True


def test_commands_when_not_connected_raise_transient_errors(tmp_path: Path) -> None:
    media = tmp_path / "a.jpg"
    media.write_bytes(b"\xff\xd8")
    session = NeonizeSession(config(tmp_path), Recorder())
    assert session.is_connected() is False
    assert_transient(lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="1")))
    assert_transient(
        lambda: session.send_media(
            base.SendMedia(to=PHONE, kind=base.MessageKind.IMAGE, path=str(media), message_id="1")
        )
    )
    ref = Message(imageMessage=ImageMessage(directPath="/x")).SerializeToString()
    assert_transient(lambda: session.download_media(base.DownloadMedia(ref, str(tmp_path / "o"))))
    assert_transient(lambda: session.mark_read(base.MarkRead(PHONE, PHONE, ("1",))))
    assert_transient(lambda: session.request_pair_code("+55 11 99999-0001"))
    assert_transient(session.logout)
    # Through the child's command dispatcher too.
    with pytest.raises(base.GatewayError) as info:
        session.handle(base.SendText(to=PHONE, text="x", message_id="1"))
    assert info.value.transient is True


@pytest.fixture
def live(tmp_path: Path):
    """A session whose client is a connected FakeClient."""
    yield from live_session(tmp_path)


def test_download_writes_the_file(live, tmp_path: Path) -> None:
    session, fake, _ = live
    image = ImageMessage(directPath="/v/x", mediaKey=b"k")
    ref = Message(imageMessage=image).SerializeToString()
    dest = tmp_path / "media" / "1" / "photo.jpg"
    result = session.download_media(base.DownloadMedia(media_ref=ref, dest=str(dest)))
    assert result == base.DownloadResult(path=str(dest), size=len(b"media-bytes"))
    assert dest.read_bytes() == b"media-bytes"
    assert fake.calls[0][1][0].imageMessage.directPath == "/v/x"

    fake.download_error = DownloadError("download failed with status code 404")
    with pytest.raises(base.GatewayError) as info:
        session.download_media(base.DownloadMedia(media_ref=ref, dest=str(dest)))
    assert info.value.transient is False
    fake.download_error = DownloadError("context deadline exceeded")
    assert_transient(lambda: session.download_media(base.DownloadMedia(ref, str(dest))))


def test_mark_read_and_pair_code(live) -> None:
    session, fake, recorder = live
    session.mark_read(
        base.MarkRead(
            chat="120363025246125486@g.us",
            sender="190000000000002@lid",
            message_ids=("A", "B"),
        )
    )
    name, ids, kwargs = fake.calls[0]
    assert (name, ids, kwargs["receipt"]) == ("mark_read", ("A", "B"), ReceiptType.READ)
    assert (kwargs["chat"].Server, kwargs["sender"].Server) == ("g.us", "lid")

    with pytest.raises(base.GatewayError, match="no QR"):
        session.request_pair_code("+55 11 99999-0001")
    session._qr_seen = True
    assert session.request_pair_code("+55 11 99999-0001") == "ABCD-EFGH"
    assert fake.calls[-1] == ("PairPhone", ("5511999990001",), {})
    recorder.wait_for(is_state(base.ConnState.PAIRING))


def test_stop_waits_for_an_ffi_call_in_flight(live) -> None:
    session, fake, recorder = live
    fake.send_gate = threading.Event()
    sender = threading.Thread(
        target=lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="1"))
    )
    sender.start()
    time.sleep(0.05)
    stopper = threading.Thread(target=session.stop)
    stopper.start()
    time.sleep(0.1)
    # stop() needs the exclusive lock: it must not tear the client down mid-send.
    assert [c[0] for c in fake.calls] == ["send_message"]
    fake.send_gate.set()
    sender.join(2)
    stopper.join(5)
    assert [c[0] for c in fake.calls] == ["send_message", "stop"]
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
    assert_transient(lambda: session.send_text(base.SendText(to=PHONE, text="x", message_id="2")))


def test_stop_honours_its_timeout_when_go_is_slow_to_stop(live) -> None:
    session, fake, recorder = live
    fake.stop_gate = threading.Event()
    try:
        started = time.monotonic()
        session.stop(timeout=0.5)
        assert time.monotonic() - started < 1.5
        assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
        # Go is still inside Stop: the exclusive lock stays taken until it returns.
        assert not FFI_LOCK.acquire_read(timeout=0)
    finally:
        fake.stop_gate.set()
    assert FFI_LOCK.acquire_read(timeout=2)
    FFI_LOCK.release_read()


# --- offline, with the real Go core ---------------------------------------------------


def test_connect_retries_with_growing_backoff_and_stops_fast(tmp_path: Path) -> None:
    recorder = Recorder()
    cfg = config(tmp_path, retry_initial="0.2")
    session = NeonizeSession(cfg, recorder)
    session.start()
    try:
        found = recorder.wait_for(is_state(base.ConnState.DISCONNECTED), count=3, timeout=10)
        # No route to WhatsApp: each connect fails and says why.
        assert all("web.whatsapp.com" in e.detail for _, _, e in found)
        first_gap = found[1][0] - found[0][0]
        second_gap = found[2][0] - found[1][0]
        assert first_gap >= 0.2
        assert second_gap >= 0.4
        assert session.retry_waits[1] > session.retry_waits[0]
        assert session.is_connected() is False
        assert_transient(lambda: session.send_text(base.SendText(PHONE, "x", "1")))
        # Go really ran: it created the SQLite store with whatsmeow's tables.
        with sqlite3.connect(cfg.store) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
        assert "whatsmeow_device" in tables
    finally:
        started = time.monotonic()
        session.stop(timeout=5)
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert recorder.states()[0] == base.ConnState.STARTING
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)


def test_stop_interrupts_a_long_backoff(tmp_path: Path) -> None:
    recorder = Recorder()
    session = NeonizeSession(config(tmp_path, retry_initial="60"), recorder)
    session.start()
    recorder.wait_for(is_state(base.ConnState.DISCONNECTED), timeout=10)
    started = time.monotonic()
    session.stop(timeout=5)
    assert time.monotonic() - started < 1.0  # not the 60 s backoff
    assert recorder.events[-1] == base.StateChanged(base.ConnState.STOPPED)
    session.stop(timeout=1)  # idempotent: no second STOPPED
    assert recorder.states().count(base.ConnState.STOPPED) == 1


# A child interpreter, because the failure this guards against is a Go abort
# (rc 134) that would take pytest down with it.
CHILD = r"""
import json, logging, os, sqlite3, sys, time
root = logging.getLogger()
from whatsapp.gateway import base
from whatsapp.gateway import neonize as gw
out = {
    "root_handlers": len(root.handlers),
    "root_level": root.level,
    "neonize_level": logging.getLogger("neonize").getEffectiveLevel(),
}
store = sys.argv[1]

def run(device_jid, until):
    events = []
    session = gw.NeonizeSession(
        base.SessionConfig(account="child", store=store, device_jid=device_jid,
                           options={"retry_initial": "30"}),
        events.append,
    )
    session.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        isinstance(e, base.StateChanged) and e.state == until for e in events
    ):
        time.sleep(0.02)
    session.stop(timeout=5)
    return [[e.state.value, e.detail] for e in events if isinstance(e, base.StateChanged)]

# 1. A new device: creates the store, connect fails offline.
out["pairing"] = run("", base.ConnState.DISCONNECTED)
# 2. A device the store does not have: whatsmeow would abort; we must not.
out["unknown"] = run("5511000000000:7@s.whatsapp.net", base.ConnState.STOPPED)
# 3. A device the store has (fake keys of the right sizes): Go gets to connect.
r = os.urandom
with sqlite3.connect(store) as db:
    db.execute(
        "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
        " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
        " adv_account_sig, adv_account_sig_key, adv_device_sig)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        ("5511000000000:8@s.whatsapp.net", 1, r(32), r(32), r(32), 1, r(64), r(32), b"x",
         r(64), r(32), r(64)),
    )
out["known"] = run("5511000000000:8@s.whatsapp.net", base.ConnState.DISCONNECTED)
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def child_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("child") / "store.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(store)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"child died rc={proc.returncode}\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_unknown_device_is_logged_out_without_crashing(child_run: dict[str, Any]) -> None:
    assert child_run["unknown"] == [
        ["starting", ""],
        ["logged_out", "device not found in store"],
        ["stopped", ""],
    ]


def test_stored_device_is_resumed(child_run: dict[str, Any]) -> None:
    states = [s for s, _ in child_run["known"]]
    assert states[:2] == ["starting", "disconnected"]
    assert "web.whatsapp.com" in child_run["known"][1][1]  # it dialled: the device loaded
    assert states[-1] == "stopped" and "logged_out" not in states
    assert [s for s, _ in child_run["pairing"]] == ["starting", "disconnected", "stopped"]


def test_importing_neonize_leaves_root_logging_alone(child_run: dict[str, Any]) -> None:
    assert child_run["root_handlers"] == 0
    assert child_run["root_level"] == 30  # WARNING, Python's default; neonize sets INFO
    assert child_run["neonize_level"] == 30
