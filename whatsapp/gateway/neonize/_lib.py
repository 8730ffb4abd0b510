"""The neonize library, imported quietly: the only place in the project that imports neonize.

Everything else in :mod:`whatsapp.gateway.neonize` takes the library names it
needs from here, so the import guard below runs before any of them exists.
"""

from __future__ import annotations

import logging

# neonize calls ``logging.basicConfig(level=INFO)`` at import time, which would
# install an INFO stream handler on the root logger of whatever process imports
# it (the child, or pytest). basicConfig is a no-op when the root logger already
# has a handler, so a NullHandler is parked there for the duration of the import.
_root_logger = logging.getLogger()
_import_guard = logging.NullHandler() if not _root_logger.handlers else None
if _import_guard is not None:
    _root_logger.addHandler(_import_guard)
try:
    from neonize.client import NewClient  # noqa: E402
    from neonize.events import (  # noqa: E402
        ClientOutdatedEv,
        ConnectedEv,
        ConnectFailureEv,
        DisconnectedEv,
        GroupInfoEv,
        HistorySyncEv,
        JoinedGroupEv,
        LoggedOutEv,
        MessageEv,
        PairStatusEv,
        PictureEv,
        ReceiptEv,
        StreamReplacedEv,
        TemporaryBanEv,
    )
    from neonize.exc import NeonizeError  # noqa: E402
    from neonize.proto.Neonize_pb2 import (  # noqa: E402
        JID,
        ConnectFailureReason,
        GetProfilePictureParams,
        GroupInfo,
    )
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (  # noqa: E402
        ContactMessage,
        ContextInfo,
        ExtendedTextMessage,
        LocationMessage,
        Message,
    )
    from neonize.utils.enum import ReceiptType  # noqa: E402
    from neonize.utils.jid import Jid2String  # noqa: E402
finally:
    if _import_guard is not None:
        _root_logger.removeHandler(_import_guard)

# neonize logs pair codes and per-event chatter at INFO. The Go core reads the
# level of ``neonize.utils.log`` itself (not the effective level) when it
# connects, so that logger is set explicitly: WARN keeps whatsmeow quiet too.
for _name in ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
    logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = [
    "JID",
    "ClientOutdatedEv",
    "ConnectFailureEv",
    "ConnectFailureReason",
    "ConnectedEv",
    "ContactMessage",
    "ContextInfo",
    "DisconnectedEv",
    "ExtendedTextMessage",
    "GetProfilePictureParams",
    "GroupInfo",
    "GroupInfoEv",
    "HistorySyncEv",
    "Jid2String",
    "JoinedGroupEv",
    "LocationMessage",
    "LoggedOutEv",
    "Message",
    "MessageEv",
    "NeonizeError",
    "NewClient",
    "PairStatusEv",
    "PictureEv",
    "ReceiptEv",
    "ReceiptType",
    "StreamReplacedEv",
    "TemporaryBanEv",
]
