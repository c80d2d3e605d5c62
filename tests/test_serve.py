"""weer-serve: several daphne processes on one port, one service to the clients, and a dead
process replaced."""

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from domain.services.tokens import access_token_issue
from realtime.publishing import publish_event
from tests.conftest import read_metrics, run_server
from tests.factories import UserFactory
from tests.polling import wait_for
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _serving(http_url: str) -> set[int]:
    """The pids of the server processes that report open sockets on /metrics."""
    text = read_metrics(http_url)
    return {
        int(line.split('process="', 1)[1].split('"', 1)[0].rsplit(":", 1)[1])
        for line in text.splitlines()
        if line.startswith("weer_ws_connections{") and not line.endswith(" 0.0")
    }


async def test_two_processes_share_the_port_the_streams_and_the_shutdown(tmp_path: Path) -> None:
    """Both processes take sockets on one port, deliver one stream's events with one seq, and
    stop together on SIGTERM."""
    user = await asyncio.to_thread(UserFactory)
    token = access_token_issue(user=user)
    with run_server(tmp_path, "-m", "realtime.serving.serve", "--processes", "2") as server:
        children = _children(server.process.pid)
        assert len(children) == 2
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(WsClient.connect(server, token)) for _ in range(40)
            ]
            for client in clients:
                await client.subscribe("beds.46")
                await client.next()  # snapshot
            seq = await asyncio.to_thread(
                publish_event, "beds.46", "beds.changed", {"hpid": "S1", "changes": {}}
            )
            for client in clients:
                assert (await client.next())["seq"] == seq
            # The kernel spread the sockets over both processes (each reports once a second).
            await asyncio.to_thread(
                wait_for, lambda: _serving(server.http_url) == children, "both processes serving"
            )
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 15) == 0
        assert not any(_running(pid) for pid in children)


async def test_a_dead_process_is_replaced_and_one_that_keeps_dying_stops_the_server(
    tmp_path: Path,
) -> None:
    """A killed process is replaced on the same port while the other keeps running; when they
    keep dying (here 2 within the window) the server stops them all and exits non-zero."""
    command = ("-m", "realtime.serving.serve", "--processes", "2", "--max-deaths", "2")
    with run_server(tmp_path, *command) as server:
        parent = server.process.pid
        first, second = sorted(_children(parent))
        os.kill(first, signal.SIGKILL)
        replacement = await asyncio.to_thread(
            wait_for,
            lambda: next(iter(_children(parent) - {first, second}), None),
            "a process in place of the killed one",
        )
        assert _running(second)
        assert server.process.poll() is None
        os.kill(replacement, signal.SIGKILL)
        assert await asyncio.to_thread(server.process.wait, 15) == 1
        assert not _running(second)
        assert "giving up" in server.output()
