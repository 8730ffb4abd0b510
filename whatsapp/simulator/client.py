"""A small synchronous client of the simulator's control API, for tests and scripts.

Standard library only (urllib), so it works from any thread, in any test,
without an event loop. Proxies from the environment are ignored on purpose:
the simulator lives on loopback.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)


class ControlError(Exception):
    """The control API answered with an error status."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error


class ControlClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the simulator URL must be http(s), got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _open(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw).get("error", "")
            except (ValueError, AttributeError):
                error = raw.decode(errors="replace")
            raise ControlError(exc.code, error) from None

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        with self._open(method, path, body, params) as response:
            return json.loads(response.read())

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, **params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def get_bytes(self, path: str, **params: Any) -> bytes:
        with self._open("GET", path, None, params) as response:
            return response.read()

    # The calls tests use most.

    def send_message(self, **message: Any) -> str:
        """Make a contact send ``message`` (a /api/messages object); returns its id."""
        return self.post("/api/messages", message)["message_id"]

    def sent(self, phone: str) -> list[dict[str, Any]]:
        return self.get("/api/sent", phone=phone)
