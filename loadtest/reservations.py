"""Reservation latency through a running server: request → ER-screen event, and decision →
crew event, with many other websocket clients connected (held by a separate process). A phase
of ``weer-loadtest --targets``, and runnable on its own:

    .venv/bin/python -m loadtest.reservations --url http://127.0.0.1:8000 \
        --crew-token "$(cat crew.txt)" --staff-token "$(cat staff.txt)" --hpid A1100015 \
        --background-tokens background.txt --background 1000 --rounds 200

Tokens come from ``manage.py issue_tokens`` (one ambulance, one hospital user of ``--hpid``,
and ``--background`` ambulance users). Each round: the crew requests, the ER acknowledges and
then alternately approves or rejects; an approved round is completed to release its bed hold.
Latency is from just before the HTTP call to the moment the other side's websocket receives the
event. Prints p50/p95/p99/max and writes them as JSON with ``--json``.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import websockets

from loadtest.client import hold_crowd
from loadtest.report import distribution

CONDITION = {
    "sex": "male",
    "age_band": "70_79",
    "systolic_bp": 90,
    "diastolic_bp": 60,
    "pulse": 120,
    "spo2": 91,
    "consciousness": "pain",
    "chief_complaint": "Sudden right-sided weakness, 40 min",
    "suspected_category": 2,
}


def _hold_connections(ws_url: str, tokens: list[str], ready: Event, done: Event) -> None:
    # The crowd stands in for tablets that live on other machines: on this shared box it must
    # not take CPU from the server or from the two measured clients.
    os.nice(10)

    async def main() -> None:
        clients, _ = await hold_crowd(ws_url, tokens, "beds.all", since=0, concurrency=100)
        await asyncio.sleep(3)  # their snapshots are on the way: let them land first
        ready.set()
        await asyncio.to_thread(done.wait)
        for client in clients:
            client.abort()

    asyncio.run(main())


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **distribution(sorted(values))}


class _Arrivals:
    """Reads a socket all the time and notes when each (type, reservation id) arrived, so an
    event that arrives while we are still waiting for an HTTP answer is timed correctly."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self._seen: dict[tuple[str, int], asyncio.Future[float]] = {}
        self._task = asyncio.create_task(self._read())

    def _future(self, key: tuple[str, int]) -> "asyncio.Future[float]":
        return self._seen.setdefault(key, asyncio.get_running_loop().create_future())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            if isinstance(message.get("data"), dict) and "id" in message["data"]:
                future = self._future((message["type"], message["data"]["id"]))
                if not future.done():
                    future.set_result(time.perf_counter())

    async def wait(self, kind: str, rid: int) -> float:
        return await asyncio.wait_for(self._future((kind, rid)), 10)


async def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    ws_url = args.url.replace("http", "ws", 1) + "/ws/"
    crew_headers = {"Authorization": f"Bearer {args.crew_token}"}
    staff_headers = {"Authorization": f"Bearer {args.staff_token}"}
    to_screen: list[float] = []
    to_crew: dict[str, list[float]] = {"approve": [], "reject": []}
    async with (
        httpx.AsyncClient(base_url=args.url, timeout=10) as http,
        websockets.connect(f"{ws_url}?token={args.staff_token}", max_size=2**24) as screen,
        websockets.connect(f"{ws_url}?token={args.crew_token}", max_size=2**24) as tablet,
    ):
        me = (await http.get("/api/auth/me", headers=crew_headers)).json()
        await screen.send(json.dumps({"type": "subscribe", "streams": [f"hospital.{args.hpid}"]}))
        await tablet.send(json.dumps({"type": "subscribe", "streams": [f"crew.{me['id']}"]}))
        for socket in (screen, tablet):
            await socket.recv(), await socket.recv()  # subscribed, snapshot
        screen_arrivals, tablet_arrivals = _Arrivals(screen), _Arrivals(tablet)
        for round_no in range(args.rounds):
            started = time.perf_counter()
            response = await http.post(
                "/api/reservations",
                headers=crew_headers,
                json={"hospitals": [args.hpid], "condition": CONDITION},
            )
            if response.status_code == 429:  # one crew's hundreds of requests: what limits stop
                raise SystemExit(
                    "weer-loadtest: the server's per-crew reservation limit refused round "
                    f"{round_no + 1}; start it with LIMIT_RESERVATIONS_PER_CREW=off to measure"
                )
            response.raise_for_status()
            rid = response.json()[0]["id"]
            arrived = await screen_arrivals.wait("reservation.requested", rid)
            to_screen.append((arrived - started) * 1000)
            await http.post(f"/api/reservations/{rid}/acknowledge", headers=staff_headers)
            approve = round_no % 2 == 0
            started = time.perf_counter()
            if approve:
                decision = await http.post(
                    f"/api/reservations/{rid}/approve", headers=staff_headers
                )
            else:
                decision = await http.post(
                    f"/api/reservations/{rid}/reject",
                    headers=staff_headers,
                    json={"reason": "no_bed"},
                )
            decision.raise_for_status()
            received = await tablet_arrivals.wait("reservation.decided", rid)
            to_crew["approve" if approve else "reject"].append((received - started) * 1000)
            if approve:
                await http.post(f"/api/reservations/{rid}/complete", headers=crew_headers)
    return {
        "request_to_er_screen_ms": _percentiles(to_screen),
        "decision_to_crew_ms": _percentiles(to_crew["approve"] + to_crew["reject"]),
        "approval_to_crew_ms": _percentiles(to_crew["approve"]),
        "rejection_to_crew_ms": _percentiles(to_crew["reject"]),
    }


@contextlib.contextmanager
def background_clients(url: str, tokens: list[str]) -> Iterator[None]:
    """Hold ``tokens`` connected on ``beds.all`` in another process while the block runs."""
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    ws_url = url.replace("http", "ws", 1) + "/ws/"
    holder = multiprocessing.Process(target=_hold_connections, args=(ws_url, tokens, ready, done))
    holder.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the background clients did not connect within 120 s")
        yield
    finally:
        done.set()
        holder.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--crew-token", required=True)
    parser.add_argument("--staff-token", required=True)
    parser.add_argument("--hpid", required=True)
    parser.add_argument("--background-tokens", type=Path)
    parser.add_argument("--background", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tokens = (
        args.background_tokens.read_text().split()[: args.background]
        if args.background_tokens
        else []
    )
    with background_clients(args.url, tokens) if tokens else contextlib.nullcontext():
        figures = asyncio.run(measure(args))
    for name, stats in figures.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
