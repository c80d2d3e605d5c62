"""The one family of errors that services raise. Edges map them once: HTTP statuses in
``domain.api.errors``, websocket close codes in ``realtime.close_codes``."""

from collections.abc import Mapping, Sequence
from enum import StrEnum

from django.db import InterfaceError, OperationalError

# What the database raises when it cannot be reached or the connection dropped: Django wraps
# mysqlclient's errors in these, connect errors included (also lock-wait timeouts and
# deadlocks, which are as transient). Edges turn them into ``ServiceUnavailable``; tasks retry
# on them.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class ApplicationError(Exception):
    """Base of every expected failure. ``code`` is stable and documented; ``message`` is for
    people; ``fields`` maps an input field to its problems."""

    code = "application_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, Sequence[str]] | None = None,
        current: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = {name: list(problems) for name, problems in (fields or {}).items()}
        self.current = current  # the object's current state, for a Conflict


class ValidationFailed(ApplicationError):
    code = "validation_error"


class AuthenticationFailed(ApplicationError):
    """No valid credentials: missing, malformed, expired or tampered token, wrong password."""

    code = "not_authenticated"


class PermissionDenied(ApplicationError):
    """Authenticated, but this user may not do this (wrong role, not approved)."""

    code = "forbidden"


class NotFound(ApplicationError):
    code = "not_found"


class Conflict(ApplicationError):
    """The request is valid but contradicts the current state."""

    code = "conflict"


class Unprocessable(ApplicationError):
    """Well-formed, but it cannot be processed as sent (e.g. an idempotency key reused for a
    different request)."""

    code = "unprocessable"


class RateLimited(ApplicationError):
    """Too many requests of one kind from one account or address in a while (the limits of
    ``domain.services.rate_limits``). Not an error of the request itself: the same one works
    after ``retry_after`` seconds (HTTP 429 with ``Retry-After``; websocket close code 4429)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(ApplicationError):
    """Something the service needs (its database) cannot be reached right now. Not the
    caller's fault, and not permanent: the same request may work in a moment (HTTP 503 with
    ``Retry-After``; websocket close code 4503)."""

    code = "unavailable"

    @classmethod
    def database(cls) -> "ServiceUnavailable":
        return cls("The service cannot reach its database right now; try again shortly.")


class ErrorCode(StrEnum):
    """The stable ``code`` of every specific failure the services raise (the classes above
    give the general ones). Documented in docs/api.md and docs/protocol.md; tests use these."""

    USERNAME_TAKEN = "username_taken"
    UNSUPPORTED_SNAPSHOTS = "unsupported_snapshots"  # websocket ?snapshots= of another kind
    ALREADY_ACTIVE = "already_active"
    ALREADY_REJECTED = "already_rejected"
    ALREADY_DISABLED = "already_disabled"
    NOT_DISABLED = "not_disabled"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOKEN_MISSING = "token_missing"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REUSED = "token_reused"
    TOKEN_REVOKED = "token_revoked"  # logged out, or the password changed since it was issued
    WRONG_PASSWORD = "wrong_password"
    INVALID_TOKEN = "invalid_token"
    ACCOUNT_PENDING = "account_pending"
    ACCOUNT_REJECTED = "account_rejected"
    ACCOUNT_DISABLED = "account_disabled"
    HOSPITAL_NOT_FOUND = "hospital_not_found"
    RESERVATION_NOT_FOUND = "reservation_not_found"
    RESERVATION_NOT_PENDING = "reservation_not_pending"
    RESERVATION_NOT_APPROVED = "reservation_not_approved"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    TOO_MANY_OPEN_RESERVATIONS = "too_many_open_reservations"
