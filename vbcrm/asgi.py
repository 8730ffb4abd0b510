"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vbcrm.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.wire import with_wire  # noqa: E402
from vbcrm.daphne_tweaks import disable_twisted_form_parsing  # noqa: E402

disable_twisted_form_parsing()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # with_wire: live frames written straight to daphne's sockets (realtime.wire)
        "websocket": with_wire(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
