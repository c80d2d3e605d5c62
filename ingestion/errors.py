"""Typed upstream failures. Tasks retry only ``UpstreamUnavailable``; a quota error pauses
polling until the quota resets; ``UpstreamRejected`` (bad key, bad parameters) needs a person."""


class UpstreamError(Exception):
    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class UpstreamUnavailable(UpstreamError):
    """Transient: timeout, connection error, HTTP 5xx/429, or a server-side result code."""


class UpstreamMalformed(UpstreamUnavailable):
    """The response could not be read (broken or truncated XML, missing envelope parts)."""


class UpstreamQuotaExceeded(UpstreamError):
    """resultCode 22: the key's daily quota is used up; it resets at midnight, Korea time."""


class UpstreamRejected(UpstreamError):
    """The upstream refuses us (unregistered or expired key, bad parameters): not transient."""
