"""Liveness (the process answers) and readiness (it can reach MariaDB and Redis, and is not
draining: ``realtime.serving.drain``)."""

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.log import log_response

from realtime.serving.drain import draining


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    if draining():  # after SIGTERM: send nothing new here, whatever the checks would say
        response = JsonResponse({"status": "draining"}, status=503)
        # A drain is routine: logged at DEBUG (the access log has the request), not as the
        # ERROR Django logs every other 5xx at (log_response marks it logged).
        log_response(
            "Draining: %s", request.path, response=response, request=request, level="debug"
        )
        return response
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the probe
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
    )
