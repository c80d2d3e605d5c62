"""How log lines are written (plain text, or JSON lines for Fluentd/ELK: ``LOG_FORMAT=json``),
and the request id they carry (``RequestIdMiddleware``).

A JSON line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and
``message``, then, where known, ``request_id`` (the HTTP request's, ``RequestIdMiddleware``),
``user_id`` (the API request's or the websocket's authenticated user) and ``stream`` (a line
about one stream passes it as ``extra={"stream": …}``), ``task`` and ``task_id`` (a line
written while a Celery task runs), and ``exc`` (a traceback). Both formats blank what must
never be logged: tokens in URLs (``token=``), bearer tokens and anything shaped like a JWT, and
the upstream's ``serviceKey``.
"""

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from celery import current_task
from django.http import HttpRequest, HttpResponseBase

from domain.log_context import REQUEST_ID, USER_ID

_SECRETS = re.compile(
    r"(?P<query>(?:[?&]|\b)(?:token|serviceKey|access_token|refresh_token)=)[^&\s\"']+"
    r"|(?P<bearer>Bearer\s+)[^\s\"']+"
    r"|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]+",
)
REDACTED = "[redacted]"


def redacted(text: str) -> str:
    """``text`` with every token and key blanked."""

    def blank(match: re.Match[str]) -> str:
        return (match.group("query") or match.group("bearer") or "") + REDACTED

    return _SECRETS.sub(blank, text)


class PlainLines(logging.Formatter):
    """``%(asctime)s %(levelname)s %(name)s %(message)s``, secrets blanked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redacted(super().format(record))


class JsonLines(logging.Formatter):
    """One JSON object per line (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redacted(record.getMessage()),
        }
        context = {
            "request_id": REQUEST_ID.get(),
            "user_id": USER_ID.get(),
            "stream": getattr(record, "stream", None),
        }
        line.update((key, value) for key, value in context.items() if value is not None)
        if current_task:  # a proxy: false outside a task (and outside a worker)
            line["task"] = current_task.name
            line["task_id"] = current_task.request.id
        if record.exc_info:
            line["exc"] = redacted(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


FORMATTERS = {"plain": PlainLines, "json": JsonLines}

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    """Each HTTP request's id: the caller's ``X-Request-ID`` when it is a sane one (1–64 of
    ``A-Z a-z 0-9 . _ : -``, as a proxy or ingress sets it), else a new one; on every log line
    of the request (``REQUEST_ID``) and in the answer's ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        asked = request.headers.get("X-Request-ID", "")
        request_id = asked if _REQUEST_ID.fullmatch(asked) else uuid.uuid4().hex
        request_token = REQUEST_ID.set(request_id)
        user_token = USER_ID.set(None)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(request_token)
            USER_ID.reset(user_token)
        response["X-Request-ID"] = request_id
        return response
