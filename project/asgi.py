"""ASGI entry point: HTTP goes to Django; websockets pass origin checks and JWT auth first."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# Django must be set up before anything that imports models (the websocket stack does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from realtime.auth import TokenAuthMiddleware  # noqa: E402
from realtime.origin import BrowserOriginValidator  # noqa: E402
from realtime.routing import websocket_endpoint  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(TokenAuthMiddleware(websocket_endpoint)),
    }
)
