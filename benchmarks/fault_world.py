"""The fault run's own world: processes it starts, watches and always stops. Used by
``benchmarks/fault_run.py``; the private Redis and MariaDB are ``tests.conftest.RedisServer``
and ``tests.mariadb.MariaDBServer``.

Every process runs in a session (process group) of its own, so Ctrl-C in the terminal reaches
only the fault run, which then stops each group it started (SIGTERM, then SIGKILL after 10 s);
a process that spawns children (``weer-serve``, Celery's prefork pool) takes them with it.
Each process's output is appended to ``<run dir>/<name>.log``.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class ManagedProcess:
    """One process of the run, started (and restarted) with the same command line."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- fault run: starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and tools
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to its whole process group, SIGKILL after ``timeout`` s."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        # Children left behind by a process that exited on its own (a group without leader).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.process = None

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: not {what} within {timeout} s:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""

    def log_contains(self, text: bytes) -> bool:
        try:
            return text in self.log_path.read_bytes()
        except FileNotFoundError:
            return False


class LogSays:
    """The log has gained ``text`` since this was made (a restart appends to the same log)."""

    def __init__(self, process: ManagedProcess, text: bytes) -> None:
        self.process = process
        self.text = text
        self.offset = process.log_path.stat().st_size if process.log_path.exists() else 0

    def __call__(self) -> bool:
        with self.process.log_path.open("rb") as log:
            log.seek(self.offset)
            return self.text in log.read()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its living descendants, and of the children
    they have reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(c) for c in children_of(pid))


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux: /proc/<pid>/task/<pid>/children)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


class World:
    """The processes of one run, stopped in reverse order of starting by ``close``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def add(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.log_dir)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:  # stop the others whatever happened
                print(f"fault run: stopping {process.name}: {exc}", file=sys.stderr)


@contextlib.contextmanager
def world(log_dir: Path) -> Iterator[World]:
    processes = World(log_dir)
    try:
        yield processes
    finally:
        processes.close()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
