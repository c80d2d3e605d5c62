"""One of weer-serve's processes is killed under load: the others keep serving, a fresh one
takes its place on the same port, its clients reconnect and resume with nothing lost or
doubled, and its figures leave /metrics within seconds."""

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import websockets
from django.conf import settings

from domain.models import Role
from domain.services.tokens import access_token_issue
from realtime.metrics import LATEST_KEY
from realtime.publishing import publish_event
from tests.conftest import DaphneServer, read_metrics, run_server
from tests.factories import HospitalFactory, UserFactory
from tests.polling import eventually, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TICKS = "loadtest.process-death"
CREWS = 30
STAFF = 10


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _metrics(server: DaphneServer) -> dict[str, dict[str, float]]:
    """``weer_ws_connections`` and ``weer_ws_subscriptions`` from /metrics: metric → the
    pid of a process (connections) or a stream (subscriptions) → the figure, summed."""
    text = read_metrics(server.http_url)
    figures: dict[str, dict[str, float]] = {"connections": {}, "subscriptions": {}}
    for line in text.splitlines():
        for name, label in (("connections", "process"), ("subscriptions", "stream")):
            if line.startswith(f"weer_ws_{name}{{"):
                key = line.split(f'{label}="', 1)[1].split('"', 1)[0]
                if label == "process":
                    key = key.rsplit(":", 1)[1]
                value = float(line.rsplit(" ", 1)[1])
                figures[name][key] = figures[name].get(key, 0) + value
    return figures


@dataclass
class Tablet:
    """A client that keeps its streams across drops: reconnect, resubscribe with ``since``."""

    server: DaphneServer
    token: str
    streams: list[str]
    seqs: dict[str, list[int]] = field(default_factory=dict)  # every event received, in order
    last: dict[str, int] = field(default_factory=dict)
    drops: int = 0
    snapshots_on_resume: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake):
                self.drops += 1
                # The client's own reconnect backoff (docs/protocol.md §6), kept short here.
                await asyncio.sleep(0.05)

    async def _session(self) -> None:
        url = f"{self.server.ws_url}?token={self.token}"
        async with websockets.connect(url, open_timeout=5) as socket:
            message: dict[str, Any] = {"type": "subscribe", "streams": self.streams}
            if self.last:
                message["since"] = dict(self.last)
            await socket.send(json.dumps(message))
            async for raw in socket:
                self._receive(json.loads(raw))

    def _receive(self, message: dict[str, Any]) -> None:
        stream = message.get("stream")
        if message["type"] == "snapshot":
            assert isinstance(stream, str)
            if stream in self.last:
                self.snapshots_on_resume += 1
            self.last[stream] = message["seq"]
            self.seqs.setdefault(stream, [])
            if len(self.last) == len(self.streams):
                self.subscribed.set()
        elif message["type"] not in ("subscribed", "pong"):
            assert isinstance(stream, str), message
            self.seqs[stream].append(message["seq"])
            self.last[stream] = message["seq"]


@contextlib.asynccontextmanager
async def _running(tablets: list[Tablet]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(tablet.run()) for tablet in tablets]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _publish(streams: list[str], n: int) -> dict[str, int]:
    """Publish the ``n``-th event to each stream; each stream's seq now."""
    return {
        stream: await asyncio.to_thread(publish_event, stream, "loadtest.tick", {"n": n})
        for stream in streams
    }


async def test_a_killed_process_is_replaced_and_its_clients_resume_with_nothing_lost(
    tmp_path: Path,
) -> None:
    """SIGKILL one of two processes while events flow: it is replaced on the same port, the
    other keeps serving, every client ends with every event exactly once and in order, and
    /metrics (and the metrics stream) count only live sockets within seconds."""
    hospital = await asyncio.to_thread(HospitalFactory)
    crews = [await asyncio.to_thread(UserFactory) for _ in range(CREWS)]
    staff = [
        await asyncio.to_thread(UserFactory, role=Role.HOSPITAL, hospital=hospital)
        for _ in range(STAFF)
    ]
    ward = f"hospital.{hospital.hpid}"
    with run_server(tmp_path, "-m", "realtime.serving.serve", "--processes", "2") as server:
        parent = server.process.pid
        children = _children(parent)
        assert len(children) == 2
        tablets = [Tablet(server, access_token_issue(user=u), [TICKS]) for u in crews]
        tablets += [Tablet(server, access_token_issue(user=u), [TICKS, ward]) for u in staff]
        async with _running(tablets):
            for tablet in tablets:
                await asyncio.wait_for(tablet.subscribed.wait(), 20)
            start = {t.token: dict(t.last) for t in tablets}
            await asyncio.to_thread(
                wait_for,
                lambda: set(map(int, _metrics(server)["connections"])) == children,
                "both processes serving",
            )
            for n in range(1, 31):
                await _publish([TICKS, ward], n)
            victim = min(children)
            os.kill(victim, signal.SIGKILL)
            for n in range(31, 91):  # events keep coming while its clients come back
                await _publish([TICKS, ward], n)
                await asyncio.sleep(0.01)
            await asyncio.to_thread(
                wait_for,
                lambda: len(_children(parent) - {victim}) == 2,
                "a fresh process in place of the killed one",
            )
            assert server.process.poll() is None, server.output()
            for n in range(91, 121):
                final = await _publish([TICKS, ward], n)

            async def all_caught_up() -> bool:
                return all(
                    t.last.get(stream) == final[stream] for t in tablets for stream in t.streams
                )

            await eventually(all_caught_up, "every client to have every event", timeout=30)
            for tablet in tablets:
                for stream in tablet.streams:
                    first = start[tablet.token][stream] + 1
                    expected = list(range(first, final[stream] + 1))
                    assert tablet.seqs[stream] == expected, (stream, tablet.drops)
                assert tablet.snapshots_on_resume == 0
            dropped = sum(1 for t in tablets if t.drops)
            assert 0 < dropped < len(tablets), dropped

            def only_live_sockets_counted() -> bool:
                figures = _metrics(server)
                latest = json.loads(
                    redis.Redis.from_url(settings.REDIS_URL).get(LATEST_KEY) or "{}"
                )
                return (
                    str(victim) not in figures["connections"]
                    and sum(figures["connections"].values()) == len(tablets)
                    and figures["subscriptions"].get(TICKS) == len(tablets)
                    and figures["subscriptions"].get(ward) == STAFF
                    and latest.get("connections", {}).get("total") == len(tablets)
                    and latest.get("subscriptions", {}).get(TICKS) == len(tablets)
                    and not any(p.endswith(f":{victim}") for p in latest.get("processes", {}))
                )

            await asyncio.to_thread(
                wait_for, only_live_sockets_counted, "/metrics to drop the killed process", 10
            )
            assert len(_children(parent) - children) == 1  # the replacement, still serving
        assert "exited" in server.output() or "died" in server.output()
