"""Websocket origin check: a browser page may open a socket only from an allowed origin.

Clients that send no ``Origin`` header are not browsers (tablet apps, load testers); they
cannot be driven by a hostile page, and our auth is a bearer token in the URL, never a cookie,
so they pass here and are authenticated by token alone.
"""

from collections.abc import Awaitable
from typing import Any
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class BrowserOriginValidator(OriginValidator):  # type: ignore[misc]
    def __init__(self, application: Any) -> None:
        allowed = settings.WEBSOCKET_ALLOWED_ORIGINS or settings.ALLOWED_HOSTS
        super().__init__(application, allowed)

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """Channels' check, as a plain call that hands back the inner application's coroutine
        (or the denial): an ``async`` wrapper's frame would stay alive as long as the socket."""
        origin = next((v for k, v in scope.get("headers", ()) if k == b"origin"), None)
        parsed = urlparse(origin.decode("latin1")) if origin is not None else None
        if self.valid_origin(parsed):
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        return WebsocketDenier()(scope, receive, send)  # type: ignore[no-any-return]

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return parsed_origin is None or bool(self.validate_origin(parsed_origin))
