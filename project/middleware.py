"""Site-wide answers to failures that are outages, not bugs."""

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from domain.api.errors import RETRY_AFTER_SECONDS, error_body
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
