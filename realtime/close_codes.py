"""Websocket close codes (docs/protocol.md) and the one mapping from our errors to them."""

from domain.errors import (
    ApplicationError,
    AuthenticationFailed,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from domain.events import AccountClose

NORMAL = 1000
GOING_AWAY = 1001  # the server is shutting down: reconnect and resume
# Sent by the websocket layer (autobahn, as realtime.serving.server configures it), not by
# our code: a text frame that is not UTF-8, and a message over daphne's 1 MiB limit.
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011  # sent by daphne when a consumer raises (a bug): reconnect and resume
# Service restart: the server process is draining (SIGTERM: a deploy or a restart) and closes
# its sockets one by one over WEB_DRAIN_SECONDS: reconnect after a random delay and resume.
# Sent by the server's drain itself (realtime.serving.server), through autobahn's close frame
# call that takes any code, since autobahn's sendClose allows only 1000 and 3000-4999.
SERVICE_RESTART = 1012
BAD_REQUEST = 4400  # the connect's query string asks for something the server does not do
UNAUTHENTICATED = 4401  # no, bad or expired token: refresh it, reconnect and resume
FORBIDDEN = 4403  # the account is not active: do not reconnect
SLOW_CONSUMER = 4408  # the client read too slowly: reconnect and resume
TOO_MANY_ERRORS = 4429  # too many invalid messages in a short time
# Too many connects of one user or from one address (after an ``error`` ``rate_limited``):
# reconnect after a backoff, as for too many errors.
RATE_LIMITED = TOO_MANY_ERRORS
# The server cannot reach its database: reconnect with backoff and resume. Not the standard
# 1013 ("try again later"): a consumer's close goes through autobahn's sendClose, which sends
# only 1000 and 3000-4999, and 4503 reads like its HTTP twin as 4401 and 4403 do.
TRY_AGAIN_LATER = 4503


def close_code_for(error: ApplicationError) -> int:
    if isinstance(error, AuthenticationFailed):
        return UNAUTHENTICATED
    if isinstance(error, PermissionDenied):
        return FORBIDDEN
    if isinstance(error, ServiceUnavailable):
        return TRY_AGAIN_LATER
    if isinstance(error, RateLimited):
        return RATE_LIMITED
    if isinstance(error, ValidationFailed):
        return BAD_REQUEST
    raise ValueError(f"No close code for {type(error).__name__}") from error


def close_code_for_revocation(code: str) -> int:
    """An account that lost its access: 4403 if disabled or rejected, 4401 if its login was
    ended (log-out, a new password)."""
    return UNAUTHENTICATED if code == AccountClose.REVOKED else FORBIDDEN
