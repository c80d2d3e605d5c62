"""Websocket origin check: a browser page may open a socket only from an allowed origin.

Clients that send no ``Origin`` header are not browsers (tablet apps, load testers); they
cannot be driven by a hostile page, and our auth is a bearer token in the URL, never a cookie,
so they pass here and are authenticated by token alone.
"""

from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        allowed = settings.WEBSOCKET_ALLOWED_ORIGINS or settings.ALLOWED_HOSTS
        super().__init__(application, allowed)

    def __call__(  # type: ignore[override]  # a plain call on purpose, see below
        self, scope: dict[str, Any], receive: Any, send: Any
    ) -> Awaitable[None]:
        """Channels' check, as a plain call that hands back the inner application's coroutine
        (or the denial): an ``async`` wrapper's frame would stay alive as long as the socket."""
        origin = next((v for k, v in scope.get("headers", ()) if k == b"origin"), None)
        parsed = urlparse(origin.decode("latin1")) if origin is not None else None
        if self.valid_origin(parsed):
            # The inner application is routing._endpoint: a single callable, not ASGI 2.
            inner = cast(Callable[[Any, Any, Any], Awaitable[None]], self.application)
            return inner(scope, receive, send)
        return WebsocketDenier()(cast(Any, scope), receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return parsed_origin is None or bool(self.validate_origin(parsed_origin))
