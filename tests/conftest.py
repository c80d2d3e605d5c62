import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from domain.models import Role, User
from domain.services.tokens import access_token_issue
from tests.factories import HospitalFactory, UserFactory


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests of the production path run on MariaDB: refuse to run them on the SQLite default."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.mysql":
        pytest.exit(
            f"Tests need MariaDB (DATABASE_URL=mysql://...), not {engine}. Run bin/test.",
            returncode=2,
        )


@pytest.fixture
def api() -> Client:
    return Client()


def bearer(user: User) -> dict[str, str]:
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

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.ws_url = f"ws://127.0.0.1:{port}/ws/"
        self.http_url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def daphne_server(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """Started once per session against the test database; tests that use it must commit
    their data (``django_db(transaction=True)``) for the server process to see it."""
    db = settings.DATABASES["default"]
    database_url = (
        f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}"
        f"/{db['NAME']}"
    )
    port = _free_port()
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "false"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "project.asgi:application",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"daphne did not start:\n{log_path.read_text()}"
                        ) from None
                    time.sleep(0.1)
            yield DaphneServer(port, log_path)
        finally:
            process.terminate()
            process.wait(timeout=10)
