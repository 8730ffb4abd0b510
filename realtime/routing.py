from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import path

from realtime.consumers import InboxConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

# Django's path() routes channels' consumers too; its stubs only know views.
websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    path("ws/", InboxConsumer.as_asgi()),  # type: ignore[arg-type,list-item]
]
