"""Site-wide answers to failures: outages, not bugs, and the API's error shape kept at its edge."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from domain.api.errors import RETRY_AFTER_SECONDS, error_body, error_response_for_status
from domain.errors import DATABASE_UNAVAILABLE, ServiceUnavailable

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A view that cannot reach the database answers 503 with ``Retry-After`` instead of
    Django's 500 page: a plain text page for the pages, the API's error shape under ``/api/``
    (which ``domain.api.errors`` already answers for its own operations; this covers the rest).

    Only views' exceptions come here (``process_exception``). The middleware before the view
    does not touch the database (sessions and ``request.user`` are lazy, read in views)."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.warning("%s %s: database unavailable: %r", request.method, request.path, exception)
        error = ServiceUnavailable.database()
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body(error.code, error.message), status=503)
        else:
            response = HttpResponse(error.message, status=503, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class ApiErrorShapeMiddleware:
    """Every error answer under ``/api/`` is JSON in the standard shape, whoever made it.

    The API's own handlers (``domain.api.errors``) answer its operations' errors; this covers
    the answers made around them, which are HTML or plain text: ninja's 405 for a method an
    operation does not take (``Allow`` is kept), Django's 400 for a refused ``Host``, its 500
    page for an error outside an operation, a 403 from CSRF. Outermost, so that it sees every
    other middleware's answer. Only the status is kept: those bodies carry nothing a client
    needs (and with ``DEBUG``, settings and tracebacks no client may see)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith("/api/")
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
        return error_response_for_status(response.status_code, allowed_methods=allowed)
