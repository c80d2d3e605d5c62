"""Fixtures and helpers shared by the tests: users and API clients, events read back from the
Redis streams, real server processes, and waiting for a condition with a deadline."""

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict, TypeVar, cast
from urllib.request import Request, urlopen

import pytest
import redis
from django.conf import settings
from django.test import Client

from domain.models import Role, User
from domain.services.tokens import access_token_issue
from ingestion.simulator import SimulatorServer
from realtime.engine import SyncEngine, is_cluster, sync_engine
from realtime.publishing import history_key
from tests.factories import HospitalFactory, UserFactory
from tests.polling import wait_for

T = TypeVar("T")
Event = dict[str, Any]
"""An event as a client receives it: ``type``, ``stream``, ``seq``, ``ts`` and ``data``."""
StreamEvents = Callable[[str], list[Event]]
METRICS_TOKEN = "test-only-metrics-token-0123456789abcdef"
"""What the test process and every server it starts expect on /metrics (unless the run's
environment sets ``METRICS_TOKEN``): send ``metrics_headers()``."""


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests of the production path run on MariaDB and a Redis database of their own, which
    they empty first; refuse the SQLite default and Redis database 0."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.mysql":
        pytest.exit(
            f"Tests need MariaDB (DATABASE_URL=mysql://...), not {engine}. Run bin/test.",
            returncode=2,
        )
    client = redis.Redis.from_url(settings.REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db", 0) == 0:
        pytest.exit(
            "Tests empty their Redis database: point REDIS_URL at one other than 0 "
            "(bin/test uses redis://127.0.0.1:6379/15).",
            returncode=2,
        )
    client.flushdb()
    if is_cluster(settings.REALTIME_REDIS_URL):  # a cluster of the run's own (REALTIME_REDIS_URL)
        cast(redis.RedisCluster, realtime_engine()).flushall(
            target_nodes=redis.RedisCluster.PRIMARIES
        )
    if not settings.METRICS_TOKEN:
        settings.METRICS_TOKEN = METRICS_TOKEN


@functools.cache
def realtime_engine() -> SyncEngine:
    """The test process's one client of the realtime engine (one Redis, or the cluster of a
    cluster run). One for the run: redis-py's ``RedisCluster.close()`` leaves its nodes'
    sockets to the garbage collector, which warns of each."""
    return sync_engine(settings.REALTIME_REDIS_URL)


def metrics_headers() -> dict[str, str]:
    """The header a scraper sends to read /metrics: ``httpx.get(url, headers=...)``."""
    return {"Authorization": f"Bearer {settings.METRICS_TOKEN}"}


def read_metrics(http_url: str) -> str:
    """The Prometheus text of ``http_url``'s /metrics, read as the scraper does."""
    request = Request(f"{http_url}/metrics", headers=metrics_headers())
    with urlopen(request, timeout=5) as response:
        return cast(bytes, response.read()).decode()


@pytest.fixture(autouse=True)
def _no_rate_limit_spent() -> None:
    """Every test starts with its rate limits unspent: the counters live in the run's Redis,
    and the tests of one run log in and connect from 127.0.0.1 within the same minutes."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}limits:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def stream_events() -> StreamEvents:
    """Reads back everything published to a stream so far, oldest first, from its history in
    Redis: ``stream_events("beds.11")``."""
    client = realtime_engine()

    def read(stream: str) -> list[Event]:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(history_key(stream)))
        return [json.loads(fields[b"f"]) for _, fields in entries]

    return read


@pytest.fixture
def empty_streams() -> None:
    """Start with no history or sequence numbers on any beds, hospital or crew stream, so
    ``stream_events`` sees only what the test published (use with ``usefixtures``)."""
    client = realtime_engine()
    for kind in ("beds", "hospital", "crew"):
        for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}{{{kind}.*"):
            client.delete(key)


@pytest.fixture
def api() -> Client:
    return Client()


class BearerHeader(TypedDict):
    HTTP_AUTHORIZATION: str


def bearer(user: User) -> BearerHeader:
    """A fresh access token for ``user`` as test client keywords: ``api.get(url, **bearer(u))``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token_issue(user=user)}"}


@pytest.fixture
def admin_user(db: None) -> User:
    return UserFactory(role=Role.ADMIN, username="root-admin")


@pytest.fixture
def crew_user(db: None) -> User:
    return UserFactory(role=Role.AMBULANCE)


@pytest.fixture
def hospital_user(db: None) -> User:
    return UserFactory(role=Role.HOSPITAL, hospital=HospitalFactory())


class DaphneServer:
    """A real daphne process serving project.asgi on a free loopback port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.ws_url = f"ws://127.0.0.1:{port}/ws/"
        self.http_url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        """The Prometheus text of ``/metrics``: every server process's figures, as each last
        reported them (once a second)."""
        return read_metrics(self.http_url)

    def socket_figures(self) -> tuple[int, int]:
        """This process's open websockets and stream subscriptions, as ``/metrics`` shows
        them."""
        process = f'process="{socket.gethostname()}:{self.process.pid}"'
        counts = {"weer_ws_connections": 0.0, "weer_ws_subscriptions": 0.0}
        for line in self.metrics().splitlines():
            name, _, rest = line.partition("{")
            if name in counts and process in rest:
                counts[name] += float(rest.rsplit(" ", 1)[1])
        return int(counts["weer_ws_connections"]), int(counts["weer_ws_subscriptions"])

    def rss_kib(self) -> int:
        """Resident memory of the server process."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether ``process`` accepts connections on ``port`` yet (it must not have exited)."""
    if process.poll() is not None:
        raise ChildProcessError(f"exited with {process.returncode}")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def server_env() -> dict[str, str]:
    """The environment of a server process on the test database and Redis."""
    db = settings.DATABASES["default"]
    database_url = (
        f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}"
        f"/{db['NAME']}"
    )
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        # A run against a cluster (tests/test_redis_cluster.py) names it; otherwise the engine
        # follows REDIS_URL, also where a test gives its server a Redis of its own.
        **(
            {"REALTIME_REDIS_URL": settings.REALTIME_REDIS_URL}
            if settings.REALTIME_REDIS_URL != settings.REDIS_URL
            else {}
        ),
        "DEBUG": "false",
        "METRICS_TOKEN": settings.METRICS_TOKEN,
        # Stopped servers close their sockets at once (tests of the drain set their own).
        "WEB_DRAIN_SECONDS": "0",
    }


@contextlib.contextmanager
def run_server(
    log_dir: Path,
    *command: str,
    env: Mapping[str, str] | None = None,
    whole_env: Mapping[str, str] | None = None,
) -> Iterator[DaphneServer]:
    """Run ``python <command> -b 127.0.0.1 -p <free port>`` until the port answers; ``env``
    overrides settings of the test environment (e.g. ``REDIS_URL`` of a private Redis), or
    ``whole_env`` replaces it (nothing of the test run's, its secrets included)."""
    port = _free_port()
    log_path = log_dir / f"server-{port}.log"
    argv = [sys.executable, *command, "-b", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env=dict(whole_env) if whole_env is not None else {**server_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )
        try:
            try:
                wait_for(lambda: _answers(process, port), f"a server on port {port}", timeout=30)
            except (AssertionError, ChildProcessError):
                raise RuntimeError(f"the server did not start:\n{log_path.read_text()}") from None
            yield DaphneServer(process, port, log_path)
        finally:
            process.terminate()
            process.wait(timeout=10)


class RedisServer:
    """A redis-server of the test's own, on a free loopback port, keeping nothing on disk
    unless stopped with ``save=True``: the test may stop, restart and flush it (never the
    shared one)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        executable = shutil.which("redis-server")
        assert executable, "redis-server is needed"
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        wait_for(lambda: _pings(client), f"redis-server on {self.port}", timeout=10)

    def stop(self, *, save: bool = False) -> None:
        """Kill it (as a crash would: nothing is saved), or with ``save`` shut it down as an
        operator's restart does, writing its data to its directory for the next ``start`` on
        the same port to load."""
        assert self.process is not None, "not running"
        if save:
            redis.Redis.from_url(self.url, socket_timeout=10).shutdown(save=True)
        else:
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers, as in a partition."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGCONT)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def run_redis(directory: Path) -> Iterator[RedisServer]:
    """A private ``RedisServer``, started, and stopped at the end whatever the test did."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()


@contextlib.contextmanager
def run_celery_worker(
    log_dir: Path, simulator: SimulatorServer | None, *options: str, **env: str
) -> Iterator[None]:
    """A real Celery worker process on the test database and Redis, polling ``simulator``
    (its service key ``e2e-key``) if one is given; ``options`` go to ``celery worker`` (e.g.
    ``"-B"``: run the beat schedule too, its state file in ``log_dir``), ``env`` adds
    settings. Yields once it is ready."""
    log = log_dir / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "project", "worker", "-P", "solo", "-l", "INFO"]
    argv += [*options, "-s", str(log_dir / "beat-schedule")] if "-B" in options else options
    upstream = (
        {
            "UPSTREAM_BASE_URL": simulator.api_url,
            "UPSTREAM_SERVICE_KEY": "e2e-key",
            "UPSTREAM_TIMEOUT_SECONDS": "1",
            "UPSTREAM_DAILY_CALL_BUDGET": "1000000",
        }
        if simulator is not None
        else {}
    )
    with log.open("wb") as out:
        worker = subprocess.Popen(
            argv,
            env={**server_env(), **upstream, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )

        def ready() -> bool:
            assert worker.poll() is None, f"the worker exited:\n{log.read_text()}"
            return b"ready." in log.read_bytes()

        try:
            try:
                wait_for(ready, "the Celery worker to be ready", timeout=30)
            except AssertionError as slow:
                raise AssertionError(f"{slow}\n{log.read_text()}") from None
            yield
        finally:
            worker.terminate()
            worker.wait(timeout=20)


def _run_daphne(log_dir: Path) -> contextlib.AbstractContextManager[DaphneServer]:
    """daphne as weer-serve runs it, as one process (its memory is the process's own)."""
    return run_server(log_dir, "-m", "realtime.serving.server", "project.asgi:application")


@pytest.fixture(scope="session")
def daphne_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """Started once per session against the test database; tests that use it must commit
    their data (``django_db(transaction=True)``) for the server process to see it."""
    with _run_daphne(tmp_path_factory.mktemp("daphne")) as server:
        yield server


@pytest.fixture(scope="session")
def second_daphne_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """Another server process on the same database and Redis: one service, two processes."""
    with _run_daphne(tmp_path_factory.mktemp("daphne2")) as server:
        yield server
