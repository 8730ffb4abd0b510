"""What travels over the channel layer, and on which layer.

Both sides share this: realtime.layer sends these messages; realtime.hub receives the
live page events and the consumers' notices, and realtime.layer.WorkerInbox the
workers' wake-ups.

Live page events go over their own layer alias, ``BROADCAST`` (Redis pub/sub); the
workers' wake-ups and the health check's round trip use the default one.

A message to a group is numbered by the process that sent it (``src``, ``gen``, ``seq``:
see realtime.layer's ``_Sequence``) so that a hub can tell when it missed one.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

BROADCAST = "broadcast"


def broadcast_layer() -> BaseChannelLayer | None:
    alias = BROADCAST if BROADCAST in settings.CHANNEL_LAYERS else DEFAULT_CHANNEL_LAYER
    return get_channel_layer(alias)


class _Numbered(TypedDict, total=False):
    """Set by the sender: the group a message went to and its number there."""

    group: str
    src: str
    gen: int
    seq: int


class Push(_Numbered):
    """One event for a group's sockets: pre-encoded ``frames`` (language -> frame, and
    realtime.fragments.OWNER_FRAMES), or the ``rows`` each web process renders them from."""

    type: Literal["push"]
    event: str
    frames: NotRequired[dict[str, Any]]
    rows: NotRequired[dict[str, Any]]


class PushBatch(_Numbered):
    """Consecutive pushes to one group, sent as one message (order kept)."""

    type: Literal["push.batch"]
    pushes: list[Push]


class Gap(_Numbered):
    """Sent once the layer is back, to a group that lost messages: its number shows it."""

    type: Literal["gap"]


class GroupsRefresh(_Numbered):
    """The users of a ``user-<id>`` group gained or lost numbers."""

    type: Literal["groups.refresh"]


class HubPing(TypedDict):
    """A hub's ping to its own channel, to notice when the layer stops reaching it."""

    type: Literal["hub.ping"]
    n: int


class WorkerWakeup(TypedDict):
    """A worker looks at its outbox and state now (``session_id``: which number)."""

    type: Literal["worker.wakeup"]
    session_id: int


class WorkerLookup(TypedDict):
    """A web process asks the worker holding ``session_id`` which ``phones`` are on
    WhatsApp; the worker answers on ``reply_to`` with a ``LookupAnswer``."""

    type: Literal["worker.lookup"]
    session_id: int
    phones: list[str]
    reply_to: str


class LookupAnswer(TypedDict):
    """``results``: ``{"phone", "on_whatsapp", "jid"}`` per phone asked, or ``error``
    (``not_connected``: the worker does not run the number connected; ``failed``:
    WhatsApp did not answer)."""

    type: Literal["worker.lookup.answer"]
    results: NotRequired[list[dict[str, Any]]]
    error: NotRequired[str]


# What a hub receives.
HubMessage = Push | PushBatch | Gap | GroupsRefresh | HubPing
