"""End to end with real processes: the upstream simulator → a Celery worker (Redis broker) →
MariaDB → the publishing path → a websocket client on a real daphne server."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.request import Request, urlopen

import pytest
import redis
from django.conf import settings

from domain.models import ERStatus, RegionFreshness
from domain.services.tokens import access_token_issue
from ingestion.budget import BLOCKED_KEY
from ingestion.metrics import read_ingestion_metrics
from ingestion.simulator import SimulatorServer, running_simulator
from ingestion.tasks import poll_region_beds
from tests.conftest import DaphneServer, run_celery_worker
from tests.factories import UserFactory
from tests.polling import wait_for
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SEOUL = "11"
STALE_AFTER = 6.0
BEDS = "getEmrrmRltmUsefulSckbdInfoInqire"
# Each upstream fault, and the ingestion figure that counts it.
FAULTS = [
    ("http500", f"{BEDS}:polls_failed:UpstreamUnavailable"),
    ("malformed", f"{BEDS}:polls_failed:UpstreamMalformed"),
    ("timeout", f"{BEDS}:polls_failed:UpstreamUnavailable"),
    ("code30", f"{BEDS}:polls_failed:UpstreamRejected"),
    ("truncated", f"{BEDS}:polls_failed:UpstreamMalformed"),
    ("code22", f"{BEDS}:polls_failed:UpstreamQuotaExceeded"),
    ("stale_hvidate", "records_older_skipped"),
    ("bad_record", "records_rejected"),
]

Statuses = dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(walk_interval=0, service_key="e2e-key") as (server, _):
        yield server


@pytest.fixture(scope="module")
def celery_worker(
    django_db_setup: None, simulator: SimulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A real worker process on the test database, polling the simulator."""
    stale_after = {"INGEST_STALE_AFTER_SECONDS": str(STALE_AFTER)}
    with run_celery_worker(tmp_path_factory.mktemp("worker"), simulator, **stale_after):
        yield


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


def _last_attempt(region: str) -> datetime | None:
    return (
        RegionFreshness.objects.filter(region_code=region)
        .values_list("last_attempt_at", flat=True)
        .first()
    )


def _poll_and_wait(region: str = SEOUL) -> None:
    """Queue a beds poll for the worker and wait until it has been attempted."""
    before = _last_attempt(region)
    poll_region_beds.delay(region)
    wait_for(lambda: _last_attempt(region) not in (None, before), "the worker to poll", timeout=20)


def _seoul_state() -> Statuses:
    return {
        s.hospital.hpid: s.values() | {"hvidate": s.hvidate}
        for s in ERStatus.objects.filter(hospital__region_code=SEOUL).select_related("hospital")
    }


def _figures() -> dict[str, Any]:
    return read_ingestion_metrics(redis.Redis.from_url(settings.REDIS_URL))


@dataclass
class Tablet:
    """A websocket client subscribed to Seoul's beds after the first load, and what it knew."""

    client: WsClient
    head: int  # the stream's seq when it subscribed
    hpid: str  # the hospital whose beds the steps change
    state: Statuses


@asynccontextmanager
async def _first_load_then_subscribe(server: DaphneServer) -> AsyncIterator[Tablet]:
    """The worker loads Seoul; a tablet subscribes and its snapshot holds every hospital."""
    await asyncio.to_thread(_poll_and_wait)
    state = await asyncio.to_thread(_seoul_state)
    assert len(state) > 40
    user = await asyncio.to_thread(UserFactory)
    async with WsClient.connect(server, access_token_issue(user=user)) as client:
        head = (await client.subscribe(f"beds.{SEOUL}"))["seq"]
        snapshot = await client.next()
        assert {h["hpid"] for h in snapshot["data"]["hospitals"]} >= set(state)
        yield Tablet(client, head, sorted(state)[0], state)


async def _one_field_changes_upstream(simulator: SimulatorServer, tablet: Tablet) -> None:
    """One field of one hospital changes upstream: exactly that change reaches the tablet."""
    old = tablet.state[tablet.hpid]["er_general"]
    new = -4 if old != -4 else -5
    path = f"hospitals/{tablet.hpid}"
    await asyncio.to_thread(_control, simulator, "PUT", path, {"values": {"hvec": new}})
    await asyncio.to_thread(_poll_and_wait)
    event = await tablet.client.next()
    assert event["type"] == "beds.changed"
    assert event["seq"] == tablet.head + 1
    assert event["data"]["hpid"] == tablet.hpid
    assert event["data"]["changes"] == {"er_general": {"old": old, "new": new}}


async def _unchanged_poll_sends_nothing(tablet: Tablet) -> None:
    """A poll that finds nothing changed upstream sends nothing."""
    await asyncio.to_thread(_poll_and_wait)
    await tablet.client.assert_nothing_pending()


async def _fault_keeps_the_last_good_state(
    simulator: SimulatorServer, tablet: Tablet, mode: str, figure: str, good: Statuses
) -> None:
    """A poll through the fault leaves the stored state as it was and counts the fault in the
    figures; once it clears, the next poll still has nothing to send."""
    before = await asyncio.to_thread(_figures)
    fault = {"mode": mode, "operations": [BEDS], "seconds": 3}
    await asyncio.to_thread(_control, simulator, "POST", "faults", fault)
    await asyncio.to_thread(_poll_and_wait)
    await asyncio.to_thread(
        wait_for,
        lambda: _figures().get(figure, 0) > before.get(figure, 0),
        f"{mode}: {figure} counted",
    )
    await asyncio.to_thread(_control, simulator, "DELETE", "faults")
    redis.Redis.from_url(settings.REDIS_URL).delete(BLOCKED_KEY)
    assert await asyncio.to_thread(_seoul_state) == good, mode
    await asyncio.to_thread(_poll_and_wait)
    await tablet.client.assert_nothing_pending()


async def _staleness_comes_and_goes(
    simulator: SimulatorServer, tablet: Tablet, good: Statuses
) -> None:
    """Polls failing for longer than the limit mark the region stale; recovery clears it."""
    await asyncio.to_thread(_control, simulator, "POST", "faults", {"mode": "http500"})
    # Time itself is under test here: staleness is STALE_AFTER seconds without a good poll.
    await asyncio.sleep(STALE_AFTER + 0.5)
    await asyncio.to_thread(_poll_and_wait)
    stale = await tablet.client.next(timeout=10)
    assert (stale["type"], stale["data"]["stale"]) == ("beds.stale", True)
    assert tablet.hpid in stale["data"]["hpids"]
    await asyncio.to_thread(_control, simulator, "DELETE", "faults")
    await asyncio.to_thread(_poll_and_wait)
    fresh = await tablet.client.next(timeout=10)
    assert (fresh["type"], fresh["data"]["stale"]) == ("beds.stale", False)
    assert await asyncio.to_thread(_seoul_state) == good


async def test_simulator_to_websocket(
    daphne_server: DaphneServer, simulator: SimulatorServer, celery_worker: None
) -> None:
    """Exactly the changed fields of exactly the changed hospitals reach the client; unchanged
    polls send nothing; faults keep the last good state and show in metrics; staleness comes
    and goes."""
    async with _first_load_then_subscribe(daphne_server) as tablet:
        await _one_field_changes_upstream(simulator, tablet)
        await _unchanged_poll_sends_nothing(tablet)
        good = await asyncio.to_thread(_seoul_state)
        for mode, figure in FAULTS:
            await _fault_keeps_the_last_good_state(simulator, tablet, mode, figure, good)
        await _staleness_comes_and_goes(simulator, tablet, good)
