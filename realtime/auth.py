"""Websocket authentication: ``?token=<access JWT>``, checked by the same rules as HTTP
(``domain.services.tokens``), with the account's status cached (``realtime.accounts``).

The consumer authenticates in ``connect`` and closes an unauthenticated socket with a documented
code after accepting it (a close code can only be sent on an accepted socket). Not a middleware:
a middleware's frame and scope copy would stay alive for every socket's whole life.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from domain.errors import (
    DATABASE_UNAVAILABLE,
    ApplicationError,
    AuthenticationFailed,
    ErrorCode,
    ServiceUnavailable,
)
from domain.services.tokens import AccessClaims, access_admits, access_claims

if TYPE_CHECKING:
    from realtime.accounts import AccountWatcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SocketUser:
    """All a socket needs of its user, kept for the connection's life instead of the ``User``
    row (a model instance and its fields cost about 1 KB per socket): who it is, and which
    login and token generation its token came from (to close it when those are revoked)."""

    id: int
    role: str
    hpid: str | None  # the hospital of ER staff
    family: str | None = None
    generation: int = 0

    @property
    def claims(self) -> AccessClaims:
        """What ``access_admits`` needs of the socket's token (its expiry is the socket's)."""
        return AccessClaims(self.id, datetime.max.replace(tzinfo=UTC), self.family, self.generation)


def query_value(query_string: bytes, name: str) -> str | None:
    """The first value of ``name`` in a connect's query string, if it has one."""
    values = parse_qs(query_string.decode("latin-1")).get(name)
    return values[0] if values else None


@dataclass(frozen=True, slots=True)
class SocketAuth:
    """Who is on a socket until when, or why nobody is; and when the status it was
    authenticated with was read (``AccountWatcher.add``)."""

    user: SocketUser | None
    expires_at: datetime | None
    error: ApplicationError | None
    authenticated_at: float = 0.0


async def socket_authenticate(query_string: bytes, accounts: "AccountWatcher") -> SocketAuth:
    """Who the token is for, or why nobody: an ``ApplicationError`` for a refused token, and
    ``ServiceUnavailable`` when the user cannot be read because the database is down. The
    signature is checked here; the account's status comes from ``accounts`` (cached: no
    database query while it is)."""
    token = query_value(query_string, "token")
    started = time.monotonic()
    try:
        if not token:
            raise AuthenticationFailed("No token given.", code=ErrorCode.TOKEN_MISSING)
        claims = access_claims(token)
        status = await accounts.status(claims.user_id)
        access_admits(status, claims)
    except ApplicationError as exc:
        return SocketAuth(None, None, exc)
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("websocket authentication: database unavailable: %r", exc)
        return SocketAuth(None, None, ServiceUnavailable.database())
    assert status is not None  # noqa: S101 - access_admits refused a missing user
    user = SocketUser(status.id, status.role, status.hpid, claims.family, claims.generation)
    return SocketAuth(user, claims.expires_at, None, started)
