"""Shared parts of the simulator tests: a recording gateway session, waits and shortcuts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from whatsapp.gateway import base
from whatsapp.gateway.simulator import SimulatorSession
from whatsapp.simulator import ControlClient, ControlError

S = base.ConnState


PHONE = "5511999990001"


CONTACT = "5511988887777"


CONTACT_JID = f"{CONTACT}@s.whatsapp.net"


ROOT = Path(__file__).resolve().parents[3]


class Recorder:
    """A thread-safe ``emit`` that tests can wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[base.Event] = []

    def __call__(self, event: base.Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_for(
        self, match: type | Callable[[Any], bool], *, since: int = 0, timeout: float = 5.0
    ) -> Any:
        def test(event: Any) -> bool:
            return isinstance(event, match) if isinstance(match, type) else match(event)

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[since:]:
                    if test(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event in {timeout} s; got {self.events}")
                self._cond.wait(left)

    def wait_state(self, state: base.ConnState, *, since: int = 0, timeout: float = 5.0) -> Any:
        return self.wait_for(
            lambda e: isinstance(e, base.StateChanged) and e.state is state,
            since=since,
            timeout=timeout,
        )

    def wait_count(self, kind: type, count: int, *, since: int = 0, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events[since:] if isinstance(e, kind)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)}/{count} {kind.__name__} in {timeout} s")
                self._cond.wait(left)

    def of(self, kind: type) -> list:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[base.ConnState]:
        return [e.state for e in self.of(base.StateChanged)]


class Device:
    def __init__(self, session: SimulatorSession, events: Recorder) -> None:
        self.session = session
        self.events = events


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def post_error(api: ControlClient, path: str, body: Any) -> ControlError:
    with pytest.raises(ControlError) as caught:
        api.post(path, body)
    return caught.value


def inbound(api: ControlClient, device: Device, **message: Any) -> base.InboundMessage:
    since = device.events.mark()
    message_id = api.send_message(**{"to": PHONE, "from": CONTACT, **message})
    return device.events.wait_for(
        lambda e: isinstance(e, base.InboundMessage) and e.message_id == message_id, since=since
    )


def download(device: Device, message: base.InboundMessage, dest: Path) -> bytes:
    assert message.media_ref is not None
    result = device.session.download_media(base.DownloadMedia(message.media_ref, str(dest)))
    assert result == base.DownloadResult(path=str(dest), size=dest.stat().st_size)
    return dest.read_bytes()


def link_by_qr(api: ControlClient, device: Device, account: str) -> str:
    device.events.wait_for(base.QRCode)
    answer = api.post("/api/qr/scan", {"account": account, "phone": PHONE})
    device.events.wait_state(S.CONNECTED)
    return answer["jid"]
