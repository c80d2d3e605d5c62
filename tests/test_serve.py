"""weer-serve: several daphne processes on one port, one service to the clients."""

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from urllib.request import urlopen

import pytest

from domain.services.tokens import access_token_issue
from realtime.publishing import publish_event
from tests.conftest import run_server
from tests.factories import UserFactory
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


async def test_two_processes_share_the_port_the_streams_and_the_shutdown(tmp_path: Path) -> None:
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
            await asyncio.sleep(1.5)
            with await asyncio.to_thread(urlopen, f"{server.http_url}/metrics") as response:
                text = response.read().decode()
            serving = {
                int(line.split('process="', 1)[1].split('"', 1)[0].rsplit(":", 1)[1])
                for line in text.splitlines()
                if line.startswith("weer_ws_connections{") and not line.endswith(" 0.0")
            }
            assert serving == children
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 15) == 0
        assert not any(_running(pid) for pid in children)


async def test_when_one_process_dies_the_whole_server_stops_for_its_supervisor(
    tmp_path: Path,
) -> None:
    with run_server(tmp_path, "-m", "realtime.serving.serve", "--processes", "2") as server:
        first, second = sorted(_children(server.process.pid))
        os.kill(first, signal.SIGKILL)
        assert await asyncio.to_thread(server.process.wait, 15) != 0
        assert not _running(second)
        assert "exited" in server.output()
