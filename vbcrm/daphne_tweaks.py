"""One adjustment to daphne's HTTP server, applied by vbcrm/asgi.py.

Twisted's ``Request`` parses every multipart POST body into ``request.args`` before
daphne hands the raw body to Django. Daphne never reads ``args``, so this only
costs memory (a second in-memory copy of each upload, 16 MB ones included), and a
body Twisted's parser dislikes is answered with a bare ``400`` (no body, no JSON)
that Django and the API never see. Django parses the body itself, streaming
files to disk, and answers malformed ones in the API's error shape.
"""

from __future__ import annotations

import functools
import inspect
import logging

logger = logging.getLogger(__name__)


def disable_twisted_form_parsing() -> None:
    # Imported when called, and optional: daphne and Twisted are there only when daphne serves.
    try:
        from daphne.http_protocol import WebRequest
        from twisted.web.http import Request
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebRequest, "_vbcrm_no_form_parsing", False):
        return
    if "parsePOSTFormSubmission" not in inspect.signature(Request.__init__).parameters:
        return  # an older Twisted without the switch: leave it as it is
    original = WebRequest.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        original(self, *args, **kwargs)

    WebRequest.__init__ = __init__
    WebRequest._vbcrm_no_form_parsing = True
