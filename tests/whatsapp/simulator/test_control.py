"""The fake WhatsApp network, its control API and its command line.

Every test runs a real simulator (free port, background thread) and real
SimulatorSession objects in this process; events are collected from the
session's own thread and waited for with timeouts. No database, no Django.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.whatsapp.simulator.helpers import (
    CONTACT,
    PHONE,
    ROOT,
    Device,
    inbound,
    post_error,
)
from whatsapp.gateway import base
from whatsapp.simulator import ControlClient, ControlError

# --- Control API input -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "poll", "text": "x"}, "kind"),
        ("/api/messages", {"to": PHONE, "from": CONTACT}, "text"),
        ("/api/messages", {"to": PHONE, "text": "who?"}, "from"),
        ("/api/messages", {"to": "5511000000000", "from": CONTACT, "text": "x"}, "unknown number"),
        ("/api/messages", {"from": CONTACT, "text": "x"}, "to"),
        ("/api/messages", {"to": PHONE, "from": "abc", "text": "x"}, "from"),
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "location"}, "latitude"),
        ("/api/messages", {"to": PHONE, "from": CONTACT, "kind": "contact"}, "vcard"),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "kind": "image", "media_base64": "%%"},
            "base64",
        ),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "text": "x", "group": {"jid": "1@s.whatsapp.net"}},
            "g.us",
        ),
        (
            "/api/messages",
            {"to": PHONE, "from": CONTACT, "text": "x", "timestamp": "yesterday"},
            "timestamp",
        ),
        (
            "/api/messages",
            [{"to": PHONE, "from": CONTACT, "text": "ok"}, {"to": PHONE}],
            "message 1",
        ),
        ("/api/messages", "not an object", "JSON object"),
        ("/api/receipts", {"phone": PHONE, "message_ids": ["A"], "status": "seen"}, "status"),
        ("/api/receipts", {"phone": PHONE, "message_ids": [], "status": "read"}, "message_ids"),
        ("/api/qr/scan", {"phone": PHONE}, "code"),
        ("/api/qr/scan", {"code": "2@nope"}, "phone"),
        ("/api/drop", {"phone": "5511000000000"}, "unknown number"),
        ("/api/logout", {}, "phone"),
        ("/api/replay", {"phone": PHONE, "message_id": "NEVER"}, "NEVER"),
        ("/api/history", {"phone": PHONE, "messages": [{"from": CONTACT, "kind": "nope"}]}, "kind"),
        ("/api/history", {"phone": PHONE}, "messages"),
    ],
)
def test_bad_input_is_a_400_with_an_error(
    api: ControlClient, linked: Device, path: str, body: Any, error: str
) -> None:
    caught = post_error(api, path, body)
    assert caught.status == 400
    assert error in caught.error
    # Nothing of a rejected request (or batch) reaches the device: the next
    # message is the first one it sees.
    good = inbound(api, linked, text="after")
    assert linked.events.of(base.InboundMessage) == [good]


def test_bad_json_and_unknown_endpoints(api: ControlClient) -> None:
    raw = urllib.request.Request(api.url + "/api/messages", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        api._opener.open(raw, timeout=5)
    assert caught.value.code == 400
    assert b"not valid JSON" in caught.value.read()
    with pytest.raises(ControlError) as missing:
        api.get("/api/nothing-here")
    assert missing.value.status == 404 and missing.value.error
    with pytest.raises(ControlError) as no_phone:
        api.get("/api/sent")
    assert no_phone.value.status == 400


# --- Running it ------------------------------------------------------------


def test_the_command_documents_its_options() -> None:
    from whatsapp.management.commands.whatsapp_simulator import Command

    parser = Command().create_parser("manage.py", "whatsapp_simulator")
    text = " ".join(parser.format_help().split())
    for option in ("--host", "--port", "--qr-interval", "--qr-rotations", "control API"):
        assert option in text
    args = parser.parse_args(["--port", "7072", "--qr-interval", "0.5", "--qr-rotations", "2"])
    assert (args.host, args.port, args.qr_interval, args.qr_rotations) == (
        "127.0.0.1",
        7072,
        0.5,
        2,
    )


def test_standalone_server_shuts_down_cleanly_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "whatsapp.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            assert ControlClient(url).get("/api/health") == {"ok": True}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()
