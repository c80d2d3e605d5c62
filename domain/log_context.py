"""What a log line is about, beyond its message: set where it becomes known (the request's id
by ``project.logs.RequestIdMiddleware``, the user's by the API's token check and the websocket
consumer), read by the JSON log format (``project.logs.JsonLines``). Context variables: each
request and each socket's task has its own."""

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
USER_ID: ContextVar[int | None] = ContextVar("user_id", default=None)
