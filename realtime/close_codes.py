"""Websocket close codes (docs/protocol.md) and the one mapping from our errors to them."""

from domain.errors import ApplicationError, AuthenticationFailed, PermissionDenied

NORMAL = 1000
GOING_AWAY = 1001  # the server is shutting down: reconnect and resume
UNAUTHENTICATED = 4401  # no, bad or expired token: refresh it, reconnect and resume
FORBIDDEN = 4403  # the account is not active: do not reconnect
SLOW_CONSUMER = 4408  # the client read too slowly: reconnect and resume
TOO_MANY_ERRORS = 4429  # too many invalid messages in a short time


def close_code_for(error: ApplicationError) -> int:
    if isinstance(error, AuthenticationFailed):
        return UNAUTHENTICATED
    if isinstance(error, PermissionDenied):
        return FORBIDDEN
    raise ValueError(f"No close code for {type(error).__name__}") from error
