"""The one mapping from errors to HTTP responses. Every error body has the same shape:

{"error": {"code": "validation_error", "message": "...", "fields": {"lat": ["..."]}}}
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from domain.errors import (
    DATABASE_UNAVAILABLE,
    ApplicationError,
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Unprocessable,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[ApplicationError], int] = {
    ValidationFailed: 400,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    RateLimited: 429,
    ServiceUnavailable: 503,
}
# How long a client is asked to wait before retrying a 503: about how long a database
# fail-over or restart takes.
RETRY_AFTER_SECONDS = 5
_INTERNAL_ERROR_MESSAGE = "Something went wrong on our side; it has been logged."
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal_error",
}


def error_body(
    code: str,
    message: str,
    fields: Mapping[str, Sequence[str]] | None = None,
    current: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "fields": dict(fields or {})}
    if current is not None:
        error["current"] = current
    return {"error": error}


def _fields_from_pydantic(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``loc`` is (source, [body param name,] field...); clients want just the field path."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        source, *rest = [str(part) for part in error.get("loc", ("body",))]
        path = rest[1:] if source == "body" else rest
        fields.setdefault(".".join(path) or source, []).append(str(error.get("msg", "Invalid.")))
    return fields


def _respond(
    api: NinjaAPI,
    request: HttpRequest,
    status: int,
    body: dict[str, Any],
    retry_after: int = RETRY_AFTER_SECONDS,
) -> HttpResponse:
    response = api.create_response(request, body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    if status in (429, 503):
        response["Retry-After"] = str(retry_after)
    return response


def _retry_after(exc: ApplicationError) -> int:
    """Seconds to wait before trying again: what the limit says for a 429, else the 503's."""
    return exc.retry_after if isinstance(exc, RateLimited) else RETRY_AFTER_SECONDS


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_response_for_status(status: int, *, allowed_methods: Iterable[str] = ()) -> JsonResponse:
    """The standard error body for an answer that only has a status: one made outside our
    handlers (a method an operation does not take, a refused ``Host``, Django's own 500), so
    that every ``/api/`` answer keeps the error shape. A 405 names the allowed methods, in its
    message and in ``Allow``."""
    code = _CODE_BY_STATUS.get(status, "error")
    allowed = sorted(allowed_methods)
    if status == 405:
        message = f"This method is not allowed here; allowed: {', '.join(allowed) or 'none'}."
    elif status >= 500:
        message = _INTERNAL_ERROR_MESSAGE
    else:
        message = f"{_phrase(status)}."
    response = JsonResponse(error_body(code, message), status=status)
    if status == 405:
        response["Allow"] = ", ".join(allowed)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Every path under ``/api/`` that no operation has: a JSON 404, never Django's page (which
    with ``DEBUG`` lists every URL pattern)."""
    return error_response_for_status(404)


def _unexpected(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    """A bug: logged with its traceback, answered in the error shape with nothing of it
    (ninja's own handler shows the traceback under ``DEBUG``, and Django's 500 page is HTML)."""
    logger.exception("%s %s: unhandled error", request.method, request.path)
    return _respond(api, request, 500, error_body("internal_error", _INTERNAL_ERROR_MESSAGE))


def install_error_handlers(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        return _respond(api, request, status, body)

    def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
        status = next(s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls))
        body = error_body(exc.code, exc.message, exc.fields, exc.current)
        return _respond(api, request, status, body, retry_after=_retry_after(exc))

    def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields = _fields_from_pydantic(exc.errors)
        return respond(request, 400, error_body("validation_error", "Invalid input.", fields))

    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc, AuthenticationError):
            body = error_body("not_authenticated", "A valid bearer access token is required.")
        else:
            code = _CODE_BY_STATUS.get(exc.status_code, "error")
            fields = {"body": [str(exc)]} if exc.status_code == 400 else None
            body = error_body(code, str(exc), fields)
        return respond(request, exc.status_code, body)

    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        body = error_body("body_too_large", "The request body is too large.", {"body": [str(exc)]})
        return respond(request, 400, body)

    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body("not_found", "Not found."))

    def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Raised anywhere in an operation, bearer authentication included (ninja runs both
        # under these handlers). An outage, not a bug: one line, no traceback per request.
        logger.warning("%s %s: database unavailable: %r", request.method, request.path, exc)
        return application_error(request, ServiceUnavailable.database())

    handlers: dict[type[Exception], Callable[[HttpRequest, Any], HttpResponse]] = {
        ApplicationError: application_error,
        NinjaValidationError: validation_error,
        HttpError: http_error,
        RequestDataTooBig: too_big,
        Http404: not_found,
        **dict.fromkeys(DATABASE_UNAVAILABLE, database_unavailable),
        Exception: partial(_unexpected, api),
    }
    for exc_class, handler in handlers.items():
        api.add_exception_handler(exc_class, handler)
