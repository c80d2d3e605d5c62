"""A MariaDB server of the test's own, which the test may crash, freeze and start again (never
the shared one on 3306): for the database-outage tests and fault-run benchmarks.

``MariaDBServer(directory)`` keeps its data, socket, pid file and logs under ``directory``
(initialised once by Debian's ``mariadb-install-db``) and listens on a free loopback port,
the same one across restarts, so servers started with its ``url`` find it again when it
returns. It needs Debian's ``mariadb-server`` binaries and no Django: a benchmark may use it
as it is.

    with run_mariadb(tmp_path) as db:
        migrate(db.url)                  # the schema, as `manage.py migrate` makes it
        ...                              # run servers with DATABASE_URL=db.url
        db.stop()                        # a crash: connections fail at once
        db.start()                       # InnoDB recovery: committed work kept, the rest gone

Two ways to be "down", for the two ways it goes down in production:

- ``stop()`` kills the server (SIGKILL), as a crash or an OOM kill does: new connections are
  refused at once and open ones fail on their next use. When ``start()``\\ed again, InnoDB's
  crash recovery keeps every committed transaction and rolls back every other one, which is
  what "nothing half-written" is checked against.
- ``pause()`` / ``resume()`` freeze and thaw it (SIGSTOP / SIGCONT), as a hung host or a
  network partition does: the port still accepts TCP connections (the kernel completes the
  handshake) but nothing answers, so clients wait for their own timeouts. Use it to test
  timeouts, not fast failure.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import MySQLdb  # type: ignore[import-untyped]  # mysqlclient ships no types; stubs not in dev

from tests.polling import wait_for

MARIADBD = "/usr/sbin/mariadbd"
ROOT = Path(__file__).resolve().parent.parent

# Small and quick rather than safe against power loss: a test database lives for minutes.
# Committed transactions still survive a kill of the server process (they are in the OS's
# buffers), which is the crash the tests make.
_SERVER_OPTIONS = (
    "--skip-log-bin",
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    "--performance-schema=OFF",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--max-connections=500",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MariaDBServer:
    """A private ``mariadbd`` (root without a password, loopback only) with one database,
    ``name``, created on first start. ``url`` is its ``DATABASE_URL``."""

    def __init__(self, directory: Path, name: str = "weer") -> None:
        self.directory = Path(directory)
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "mariadbd.log"
        self.name = name
        self.port = free_port()
        self.url = f"mysql://root@127.0.0.1:{self.port}/{name}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start it (initialising the data directory the first time) and return once it
        accepts connections and has its database."""
        assert self.process is None, "already running"
        assert Path(MARIADBD).exists(), f"{MARIADBD} is needed (Debian's mariadb-server)"
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.data_dir.exists():
            self._install()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    MARIADBD,
                    "--no-defaults",  # must come first: no /etc/mysql settings
                    f"--datadir={self.data_dir}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.directory / 'mariadbd.sock'}",
                    f"--pid-file={self.directory / 'mariadbd.pid'}",
                    f"--log-error={self.log_path}",
                    "--user=root",
                    *_SERVER_OPTIONS,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, f"mariadbd on port {self.port} ({self.log_path})", timeout)
        with contextlib.closing(self.connect(database=None)) as connection:
            connection.cursor().execute(
                f"CREATE DATABASE IF NOT EXISTS `{self.name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )

    def stop(self) -> None:
        """Kill it, as a crash would (see the module docstring)."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGCONT)  # a paused process must not stay frozen
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """Freeze it: connections hang instead of failing (see the module docstring)."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connect(self, database: str | None = "") -> "MySQLdb.Connection":
        """A plain mysqlclient connection to it (autocommit), to its database by default."""
        options: dict[str, object] = {}
        if database is not None:
            options["database"] = database or self.name
        connection = MySQLdb.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            connect_timeout=2,
            charset="utf8mb4",
            **options,
        )
        connection.autocommit(True)
        return connection

    def _install(self) -> None:
        installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        assert installer, "mariadb-install-db is needed (Debian's mariadb-server)"
        with (self.directory / "install.log").open("wb") as log:
            subprocess.run(
                [
                    installer,
                    "--no-defaults",
                    f"--datadir={self.data_dir}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",  # root, no password
                    "--skip-test-db",
                    *_SERVER_OPTIONS,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )

    def _answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise ChildProcessError(f"mariadbd exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            self.connect(database=None).close()
        except MySQLdb.OperationalError:
            return False
        return True


@contextlib.contextmanager
def run_mariadb(directory: Path, name: str = "weer") -> Iterator[MariaDBServer]:
    """A private ``MariaDBServer``, started, and killed at the end whatever the test did."""
    server = MariaDBServer(directory, name)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()


def migrate(database_url: str, env: Mapping[str, str] | None = None) -> None:
    """Apply every migration to ``database_url`` with ``manage.py migrate``, in a process of
    its own (this one's Django, if any, stays on its own database). ``env`` adds settings;
    the secrets a run outside the demo needs come from the caller's environment, as in
    ``bin/test``."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        env={**os.environ, **(env or {}), "DATABASE_URL": database_url},
        cwd=ROOT,
        check=True,
        timeout=300,
    )
