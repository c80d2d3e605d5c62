"""End to end with real processes: the upstream simulator → a Celery worker (Redis broker) →
MariaDB → the publishing path → a websocket client on a real daphne server."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.request import Request, urlopen

import pytest
import redis
from django.conf import settings

from domain.models import ERStatus, RegionFreshness
from domain.services.tokens import access_token_issue
from ingestion.metrics import read_ingestion_metrics
from ingestion.simulator import SimulatorServer, running_simulator
from ingestion.tasks import poll_region_beds
from tests.conftest import DaphneServer
from tests.factories import UserFactory
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SEOUL = "11"
STALE_AFTER = 6.0


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(walk_interval=0, service_key="e2e-key") as (server, _):
        yield server


@pytest.fixture(scope="module")
def celery_worker(
    django_db_setup: None, simulator: SimulatorServer, tmp_path_factory
) -> Iterator[None]:
    """A real worker process on the test database, polling the simulator."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 3306}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "UPSTREAM_BASE_URL": simulator.api_url,
        "UPSTREAM_SERVICE_KEY": "e2e-key",
        "UPSTREAM_TIMEOUT_SECONDS": "1",
        "UPSTREAM_DAILY_CALL_BUDGET": "1000000",
        "INGEST_STALE_AFTER_SECONDS": str(STALE_AFTER),
        "DEBUG": "false",
    }
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "-P", "solo", "-l", "INFO"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )
        try:
            deadline = time.monotonic() + 30
            while b"ready." not in log.read_bytes():
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield
        finally:
            worker.terminate()
            worker.wait(timeout=20)


def _control(server: SimulatorServer, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = Request(
        f"{server.base_url}/_control/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _poll_and_wait(region: str = SEOUL) -> None:
    """Queue a beds poll for the worker and wait until it has been attempted."""
    before = (
        RegionFreshness.objects.filter(region_code=region)
        .values_list("last_attempt_at", flat=True)
        .first()
    )
    poll_region_beds.delay(region)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = (
            RegionFreshness.objects.filter(region_code=region)
            .values_list("last_attempt_at", flat=True)
            .first()
        )
        if after is not None and after != before:
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not poll")


def _seoul_state() -> dict[str, dict]:
    return {
        s.hospital.hpid: s.values() | {"hvidate": s.hvidate}
        for s in ERStatus.objects.filter(hospital__region_code=SEOUL).select_related("hospital")
    }


def _figures() -> dict:
    return read_ingestion_metrics(redis.Redis.from_url(settings.REDIS_URL))


async def test_simulator_to_websocket(
    daphne_server: DaphneServer, simulator: SimulatorServer, celery_worker: None
) -> None:
    """Exactly the changed fields of exactly the changed hospitals reach the client; unchanged
    polls send nothing; faults keep the last good state and show in metrics; staleness comes
    and goes."""
    await asyncio.to_thread(_poll_and_wait)  # first load of Seoul
    state = await asyncio.to_thread(_seoul_state)
    assert len(state) > 40
    hpid = sorted(state)[0]
    user = await asyncio.to_thread(UserFactory)
    async with WsClient.connect(daphne_server, access_token_issue(user=user)) as client:
        head = (await client.subscribe(f"beds.{SEOUL}"))["seq"]
        snapshot = await client.next()
        assert {h["hpid"] for h in snapshot["data"]["hospitals"]} >= set(state)

        # One field of one hospital changes upstream: exactly that reaches the tablet.
        old = state[hpid]["er_general"]
        new = -4 if old != -4 else -5
        await asyncio.to_thread(
            _control, simulator, "PUT", f"hospitals/{hpid}", {"values": {"hvec": new}}
        )
        await asyncio.to_thread(_poll_and_wait)
        event = await client.next()
        assert event["type"] == "beds.changed"
        assert event["seq"] == head + 1
        assert event["data"]["hpid"] == hpid
        assert event["data"]["changes"] == {"er_general": {"old": old, "new": new}}

        # Nothing changed upstream: nothing is sent.
        await asyncio.to_thread(_poll_and_wait)
        await client.assert_nothing_pending()

        # Every fault leaves the last good state as it was, and is visible in the figures.
        good = await asyncio.to_thread(_seoul_state)
        for mode, figure in [
            ("http500", "polls_failed:UpstreamUnavailable"),
            ("malformed", "polls_failed:UpstreamMalformed"),
            ("timeout", "polls_failed:UpstreamUnavailable"),
            ("code30", "polls_failed:UpstreamRejected"),
            ("truncated", "polls_failed:UpstreamMalformed"),
            ("code22", "polls_failed:UpstreamQuotaExceeded"),
            ("stale_hvidate", "records_older_skipped"),
            ("bad_record", "records_rejected"),
        ]:
            before = _figures()
            fault = {
                "mode": mode,
                "operations": ["getEmrrmRltmUsefulSckbdInfoInqire"],
                "seconds": 3,
            }
            await asyncio.to_thread(_control, simulator, "POST", "faults", fault)
            await asyncio.to_thread(_poll_and_wait)
            key = (
                f"getEmrrmRltmUsefulSckbdInfoInqire:{figure}"
                if figure.startswith("polls_failed")
                else figure
            )
            await _until(
                lambda key=key, before=before: _figures().get(key, 0) > before.get(key, 0),
                f"{mode}: {key}",
            )
            await asyncio.to_thread(_control, simulator, "DELETE", "faults")
            redis.Redis.from_url(settings.REDIS_URL).delete("weer:upstream:blocked-until")
            assert await asyncio.to_thread(_seoul_state) == good, mode
            await asyncio.to_thread(_poll_and_wait)  # recovered: still nothing to send
            await client.assert_nothing_pending()

        # Failing for longer than the limit marks the region stale; recovery clears it.
        await asyncio.to_thread(_control, simulator, "POST", "faults", {"mode": "http500"})
        await asyncio.sleep(STALE_AFTER + 0.5)
        await asyncio.to_thread(_poll_and_wait)
        stale = await client.next(timeout=10)
        assert (stale["type"], stale["data"]["stale"]) == ("beds.stale", True)
        assert hpid in stale["data"]["hpids"]
        await asyncio.to_thread(_control, simulator, "DELETE", "faults")
        await asyncio.to_thread(_poll_and_wait)
        fresh = await client.next(timeout=10)
        assert (fresh["type"], fresh["data"]["stale"]) == ("beds.stale", False)
        assert await asyncio.to_thread(_seoul_state) == good


async def _until(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.2)
