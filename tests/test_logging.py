"""The configured logging (``settings.LOGGING``): what it lets through from Celery's task lines,
its two line formats (``LOG_FORMAT``), what a line carries, and what it never holds."""

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis
import websockets
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from domain.api.security import access_token_auth
from domain.log_context import REQUEST_ID, USER_ID
from domain.models import User
from domain.services.tokens import access_token_issue
from domain.tasks import sweep_reservations
from ingestion.tasks import poll_region_beds
from project.logs import JsonLines, PlainLines, RequestIdMiddleware
from tests.conftest import run_celery_worker, run_redis, run_server, server_env
from tests.polling import wait_for

TASK_LINE = "Task %s[%s] %s"
PLAIN_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ ")


@pytest.mark.parametrize("logger_name", ["celery.app.trace", "celery.worker.strategy"])
def test_routine_polls_and_the_relay_are_quiet_but_their_trouble_and_other_tasks_are_not(
    logger_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    celery = logging.getLogger(logger_name)
    celery.info(TASK_LINE, "ingestion.poll_region_beds", "a1", "received")
    celery.info(TASK_LINE, "ingestion.poll_beds", "a2", "succeeded in 0.05s: {'changed': 1}")
    celery.info(TASK_LINE, "outbox.relay", "a3", "received")
    celery.info(
        TASK_LINE, "ingestion.poll_region_beds", "a4", "retry: Retry in 5s: OperationalError"
    )
    celery.info(TASK_LINE, "reservations.sweep", "a5", "received")
    seen = [r.getMessage() for r in caplog.records if r.name == logger_name]
    assert seen == [
        "Task ingestion.poll_region_beds[a4] retry: Retry in 5s: OperationalError",
        "Task reservations.sweep[a5] received",
    ]


def test_beat_sending_a_poll_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    beat = logging.getLogger("celery.beat")
    beat.info("Scheduler: Sending due task %s (%s)", "poll-beds", "ingestion.poll_beds")
    beat.info(
        "Scheduler: Sending due task %s (%s)", "sync-institutions", "ingestion.sync_institutions"
    )
    seen = [r.getMessage() for r in caplog.records if r.name == "celery.beat"]
    assert seen == ["Scheduler: Sending due task sync-institutions (ingestion.sync_institutions)"]


# -- the line formats, secrets, the request's id and user (LOG_FORMAT) -----------------------

JWT_LIKE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLWJ5dGVz"


def _record(message: str, *, stream: str | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"broke on /ws/?token={JWT_LIKE}")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord(
        "realtime.sessions", logging.WARNING, __file__, 1, message, (), exc_info
    )
    if stream is not None:
        record.stream = stream
    return record


def test_a_json_line_says_when_what_who_and_which_stream_and_holds_no_secret() -> None:
    def formatted() -> str:
        REQUEST_ID.set("req-7")
        USER_ID.set(42)
        message = (
            f"GET /ws/?token={JWT_LIKE}&snapshots=deflate failed; Authorization: Bearer abc.def; "
            "upstream /getEmrrm?serviceKey=k3y%2Bsecret&pageNo=1"
        )
        return JsonLines().format(_record(message, stream="beds.11", exc=True))

    line = json.loads(contextvars.copy_context().run(formatted))
    assert set(line) == {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "user_id",
        "stream",
        "exc",
    }
    assert datetime.fromisoformat(line["time"]).tzinfo is not None
    assert (line["level"], line["logger"]) == ("WARNING", "realtime.sessions")
    assert (line["request_id"], line["user_id"], line["stream"]) == ("req-7", 42, "beds.11")
    text = json.dumps(line)
    for secret in (JWT_LIKE, "abc.def", "k3y"):
        assert secret not in text
    assert "token=[redacted]&snapshots=deflate" in line["message"]
    assert "ValueError" in line["exc"]


def test_a_json_line_without_context_has_only_what_is_known() -> None:
    line = json.loads(contextvars.copy_context().run(lambda: JsonLines().format(_record("hi"))))
    assert set(line) == {"time", "level", "logger", "message"}


def test_plain_lines_hold_no_secret_either() -> None:
    text = PlainLines().format(_record(f"refused /ws/?token={JWT_LIKE}", exc=True))
    assert JWT_LIKE not in text
    assert "token=[redacted]" in text


@pytest.mark.parametrize(
    ("asked", "kept"),
    [("ingress-1f2e.3:a_b", True), ("", False), ("two words", False), ("x" * 65, False)],
)
def test_a_request_carries_its_id_to_its_lines_and_its_answer(asked: str, kept: bool) -> None:
    seen: list[str | None] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(REQUEST_ID.get())
        return HttpResponse("ok")

    request = RequestFactory().get("/healthz", HTTP_X_REQUEST_ID=asked)
    response = contextvars.copy_context().run(RequestIdMiddleware(view), request)
    request_id = response["X-Request-ID"]
    assert seen == [request_id]
    assert (request_id == asked) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)


@pytest.mark.django_db
def test_an_api_request_names_its_user(crew_user: User) -> None:
    def authenticated() -> int | None:
        request = RequestFactory().get("/api/hospitals")
        access_token_auth.authenticate(request, access_token_issue(user=crew_user))
        return USER_ID.get()

    assert contextvars.copy_context().run(authenticated) == crew_user.id


def _python_with(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_log_format_json_makes_every_line_json() -> None:
    ran = _python_with(
        {"LOG_FORMAT": "json"},
        "import logging; logging.getLogger('ingestion.tasks').warning('poll 11: %s', 'timed out')",
    )
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert [(x["level"], x["logger"], x["message"]) for x in lines] == [
        ("WARNING", "ingestion.tasks", "poll 11: timed out")
    ]


def test_an_unknown_log_format_stops_the_start() -> None:
    ran = _python_with({"LOG_FORMAT": "xml"}, "pass")
    assert ran.returncode != 0
    assert "LOG_FORMAT='xml': use plain or json" in ran.stderr


def test_a_server_with_log_format_json_writes_only_json_lines_and_no_token(
    tmp_path: Path,
) -> None:
    """A real server: its own lines and its access log (Python logging now) are JSON; the
    token in a URL is blanked; a websocket's connect and close are not INFO lines."""
    with run_server(
        tmp_path,
        "-m",
        "realtime.serving.server",
        "project.asgi:application",
        env={"LOG_FORMAT": "json"},
    ) as server:
        answer = httpx.get(
            f"http://127.0.0.1:{server.port}/healthz?token={JWT_LIKE}",
            headers={"X-Request-ID": "probe-1"},
        )
        assert answer.headers["X-Request-ID"] == "probe-1"

        async def refused_socket() -> None:
            url = f"ws://127.0.0.1:{server.port}/ws/?token=not-a-token"
            async with websockets.connect(url) as socket:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await socket.recv()
                    await socket.recv()

        asyncio.run(refused_socket())
        wait_for(lambda: "/healthz" in server.output(), "the request's access line")
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "weer.access"]
    assert [line["message"].split('"')[1] for line in access] == ["GET /healthz?token=[redacted]"]
    assert JWT_LIKE not in server.output()


# -- Celery's worker and beat (project/celery.py) --------------------------------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def _poll_lock(region: str) -> Iterator[None]:
    """Hold the lock of ``region``'s beds poll, so a poll queued now logs, inside its task,
    that it skipped (ingestion.tasks), and touches neither the upstream nor the database."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    lock = client.lock(f"{settings.REDIS_KEY_PREFIX}lock:beds:{region}", timeout=60)
    assert lock.acquire(blocking=False)
    try:
        yield
    finally:
        lock.release()
        client.close()


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_with_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    """A real worker as deployed (prefork, no -q): its start-up, a task's own line (with the
    task's name and id), Celery's lines about a task and its warm shutdown are all JSON; the
    routine polls' received/succeeded lines stay filtered out."""
    from project.celery import app

    app.control.purge()  # tasks earlier tests queued with no worker running are not ours
    log = tmp_path / "worker.log"
    with (
        _poll_lock("11"),
        run_celery_worker(tmp_path, None, "-P", "prefork", "-c", "1", LOG_FORMAT="json"),
    ):
        poll_region_beds.delay("11")
        sweep_reservations.delay()
        wait_for(
            lambda: (
                "previous poll still running" in log.read_text()
                and "reservations.sweep" in log.read_text()
                and " succeeded in " in log.read_text()
            ),
            "the poll's own line and the sweep's success in the worker's log",
        )
    lines = [json.loads(line) for line in _lines(log.read_text())]  # fails on any other line
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    skipped = [line for line in lines if "previous poll still running" in line["message"]]
    assert [(line["logger"], line["task"]) for line in skipped] == [
        ("ingestion.tasks", "ingestion.poll_region_beds")
    ]
    assert re.fullmatch(r"[0-9a-f-]{36}", skipped[0]["task_id"])
    succeeded = [line for line in lines if " succeeded in " in line["message"]]
    assert [line.get("task") for line in succeeded] == ["reservations.sweep"]
    assert not [line for line in lines if "poll_region_beds[" in line["message"]]  # routine
    messages = [line["message"] for line in lines]
    assert any(message.endswith(" ready.") for message in messages)
    assert "worker: Warm shutdown (SIGTERM)" in messages


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_in_the_plain_format_keeps_it_and_its_filter(tmp_path: Path) -> None:
    """The same worker with the default format: Django's plain lines (not Celery's own
    format), the routine polls' task lines filtered, other tasks' kept."""
    log = tmp_path / "worker.log"
    with _poll_lock("11"), run_celery_worker(tmp_path, None, LOG_FORMAT="plain"):
        poll_region_beds.delay("11")
        sweep_reservations.delay()
        wait_for(
            lambda: (
                "previous poll still running" in log.read_text()
                and " succeeded in " in log.read_text()
            ),
            "the poll's own line and the sweep's success in the worker's log",
        )
    logged = [line for line in _lines(log.read_text()) if PLAIN_LINE.match(line)]
    assert any(
        " INFO ingestion.tasks beds:11: previous poll still running; skipped" in line
        for line in logged
    )
    assert any(" INFO celery.app.trace Task reservations.sweep[" in line for line in logged)
    assert not [line for line in logged if "poll_region_beds[" in line]
    assert not [line for line in _lines(log.read_text()) if line.startswith("[20")]  # Celery's


def test_celery_beat_with_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    """A real beat as deployed (no -q): no banner, every line JSON, a task it sends logged and
    the routine relay's not."""
    log = tmp_path / "beat.log"
    argv = [sys.executable, "-m", "celery", "-A", "project", "beat", "-l", "INFO"]
    with run_redis(tmp_path) as broker, log.open("wb") as out:  # its tasks go nowhere shared
        beat = subprocess.Popen(
            [*argv, "-s", str(tmp_path / "beat-schedule")],
            env={
                **server_env(),
                "REDIS_URL": broker.url,
                "LOG_FORMAT": "json",
                "RESERVATION_SWEEP_SECONDS": "0.5",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )
        try:
            wait_for(
                lambda: "Sending due task sweep-reservations" in log.read_text(),
                "beat to send the sweep",
            )
        finally:
            beat.terminate()
            beat.wait(timeout=20)
    lines = [json.loads(line) for line in _lines(log.read_text())]
    messages = [(line["logger"], line["message"]) for line in lines]
    assert ("celery.beat", "beat: Starting...") in messages
    assert not [m for m in messages if "relay-outbox" in m[1]]
