"""Websocket close codes: the one mapping from our errors to close codes (docs/protocol.md)."""

from domain.errors import ApplicationError, AuthenticationFailed, PermissionDenied

NORMAL = 1000
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


def close_code_for(error: ApplicationError) -> int:
    if isinstance(error, AuthenticationFailed):
        return UNAUTHENTICATED
    if isinstance(error, PermissionDenied):
        return FORBIDDEN
    raise ValueError(f"No close code for {type(error).__name__}") from error
