"""Websocket authentication: ``?token=<access JWT>``, verified by the same function as HTTP.

The outcome goes into the scope (``user`` and ``token_expires_at``, or ``auth_error``) and the
consumer closes unauthenticated sockets with a documented code after accepting them (a close
code can only be sent on an accepted socket).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from domain.errors import ApplicationError, AuthenticationFailed
from domain.models import User
from domain.services.tokens import access_token_authenticate


@dataclass(frozen=True, slots=True)
class SocketUser:
    """All a socket needs of its user, kept for the connection's life instead of the ``User``
    row (a model instance and its fields cost about 1 KB per socket)."""

    id: int
    role: str
    hpid: str | None  # the hospital of ER staff

    @classmethod
    def of(cls, user: User) -> "SocketUser":
        return cls(user.pk, user.role, user.hospital.hpid if user.hospital else None)


def _token_from_query(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("token")
    return values[0] if values else None


class TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # One copy of the scope (BaseMiddleware would make a second), and nothing else held
        # in this frame, which lives as long as the socket.
        scope = dict(scope, **await _authenticate(scope.get("query_string", b"")))
        return await self.inner(scope, receive, send)


async def _authenticate(query_string: bytes) -> dict[str, Any]:
    """The scope entries that say who is on the socket, or why nobody is."""
    token = _token_from_query(query_string)
    try:
        if not token:
            raise AuthenticationFailed("No token given.", code="token_missing")
        # Not thread-sensitive: a crowd reconnecting at once is authenticated on several
        # threads (each with its own database connection) instead of one at a time.
        authenticated = await database_sync_to_async(
            access_token_authenticate, thread_sensitive=False
        )(token=token)
    except ApplicationError as exc:
        return {"user": None, "token_expires_at": None, "auth_error": exc}
    return {
        "user": SocketUser.of(authenticated.user),
        "token_expires_at": authenticated.expires_at,
        "auth_error": None,
    }
