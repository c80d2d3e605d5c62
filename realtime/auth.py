"""Websocket authentication: ``?token=<access JWT>``, verified by the same function as HTTP.

The consumer authenticates in ``connect`` and closes an unauthenticated socket with a documented
code after accepting it (a close code can only be sent on an accepted socket). Not a middleware:
a middleware's frame and scope copy would stay alive for every socket's whole life.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from domain.errors import (
    DATABASE_UNAVAILABLE,
    ApplicationError,
    AuthenticationFailed,
    ErrorCode,
    ServiceUnavailable,
)
from domain.models import User
from domain.services.tokens import access_token_authenticate

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class SocketAuth:
    """Who is on a socket until when, or why nobody is."""

    user: SocketUser | None
    expires_at: datetime | None
    error: ApplicationError | None


async def socket_authenticate(query_string: bytes) -> SocketAuth:
    """Who the token is for, or why nobody: an ``ApplicationError`` for a refused token, and
    ``ServiceUnavailable`` when the user cannot be read because the database is down."""
    token = _token_from_query(query_string)
    try:
        if not token:
            raise AuthenticationFailed("No token given.", code=ErrorCode.TOKEN_MISSING)
        # Not thread-sensitive: a crowd reconnecting at once is authenticated on several
        # threads (each with its own database connection) instead of one at a time.
        authenticated = await database_sync_to_async(
            access_token_authenticate, thread_sensitive=False
        )(token=token)
    except ApplicationError as exc:
        return SocketAuth(None, None, exc)
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("websocket authentication: database unavailable: %r", exc)
        return SocketAuth(None, None, ServiceUnavailable.database())
    return SocketAuth(SocketUser.of(authenticated.user), authenticated.expires_at, None)
