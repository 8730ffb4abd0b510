"""The VAPID key pair that signs web push requests: from VBCRM_VAPID_PRIVATE_KEY, or
generated once into the data directory (kept across restarts: browsers subscribed with
its public key)."""

from __future__ import annotations

import base64
import functools
import os

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from py_vapid import Vapid02

KEY_FILE = "vapid_private.pem"


@functools.cache
def vapid() -> Vapid02:
    if settings.VBCRM_VAPID_PRIVATE_KEY:
        return Vapid02.from_string(private_key=settings.VBCRM_VAPID_PRIVATE_KEY)
    path = settings.DATA_DIR / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Vapid02()
        key.generate_keys()
        # Written next to its final name and renamed: two processes starting together
        # never read half a file; the first rename wins and both then read the same key.
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_pem())
        if not path.exists():
            os.replace(partial, path)
        else:
            partial.unlink()
    return Vapid02.from_file(str(path))


def public_key() -> str:
    """The application server key browsers subscribe with (base64url, uncompressed point)."""
    raw = vapid().public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
