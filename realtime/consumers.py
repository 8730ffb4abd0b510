"""The browser's socket at /ws/: authenticate, join the user's groups, forward frames."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from realtime import events
from whatsapp.selectors import session_list

logger = logging.getLogger(__name__)


@database_sync_to_async
def _visible_session_ids(user) -> list[int]:
    return list(session_list(user=user).values_list("pk", flat=True))


class InboxConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.groups_joined = []
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        await self.accept()
        await self._join([events.user_group(user.pk)])
        await self._join([events.session_group(s) for s in await _visible_session_ids(user)])

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _join(self, groups: list[str]) -> None:
        for group in groups:
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)

    async def push(self, event: dict) -> None:
        """A pre-encoded frame from realtime.events: forward it as is."""
        await self.send(text_data=event["frame"])
