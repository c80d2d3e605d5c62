"""Websocket origin check: a browser page may open a socket only from an allowed origin.

Clients that send no ``Origin`` header are not browsers (tablet apps, load testers); they
cannot be driven by a hostile page, and our auth is a bearer token in the URL, never a cookie,
so they pass here and are authenticated by token alone.
"""

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):  # type: ignore[misc]
    def __init__(self, application: Any) -> None:
        allowed = settings.WEBSOCKET_ALLOWED_ORIGINS or settings.ALLOWED_HOSTS
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return parsed_origin is None or bool(self.validate_origin(parsed_origin))
