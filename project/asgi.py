"""ASGI entry point: HTTP goes to Django; websockets to realtime.routing (origin, path, JWT)."""

import os
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# Django must be set up before anything that imports models (the websocket stack does).
django_asgi_app = get_asgi_application()

from realtime.routing import websocket_application  # noqa: E402

_applications: dict[str, Callable[[dict[str, Any], Any, Any], Awaitable[None]]] = {
    "http": django_asgi_app,
    "websocket": websocket_application,
}


def application(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
    """Channels' ``ProtocolTypeRouter``, as a plain call returning the protocol's application
    coroutine, so no router frame stays alive beside each websocket (see realtime.routing)."""
    return _applications[scope["type"]](scope, receive, send)


# A plain function reads as an ASGI 2 "double callable" to asgiref (and so to daphne's loader);
# asgiref.compatibility.is_double_callable looks for this hint first, for exactly this case.
application._asgi_single_callable = True  # type: ignore[attr-defined]  # noqa: SLF001 - asgiref's hint
