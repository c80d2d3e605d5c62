"""The one family of errors that services raise. Edges map them once: HTTP statuses in
``domain.api.errors``, websocket close codes in ``realtime.close_codes``."""

from collections.abc import Mapping, Sequence


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
