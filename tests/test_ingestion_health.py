"""Ingestion health per region (the admin console's figures): real polls of the simulator into
MariaDB and Redis, read back by the ``ingestion_regions`` section of the metrics stream (from a
real server) and by /metrics."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, Settings

from domain.models import Role
from domain.selectors.regions import region_data_list
from domain.services.er_status import region_poll_failed
from domain.services.tokens import access_token_issue
from ingestion import polls, upstream
from ingestion.budget import calls_key
from ingestion.errors import UpstreamUnavailable
from ingestion.metrics import KEY, IngestionMetrics, read_ingestion_metrics
from ingestion.parsing import KST
from ingestion.region_health import aread_region_health
from ingestion.simulator import Simulator, SimulatorServer, running_simulator
from tests.conftest import DaphneServer, metrics_headers
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.ws import WsClient

pytestmark = pytest.mark.django_db(transaction=True)  # the readers use their own connections

SEOUL, BUSAN, DAEGU = "11", "26", "27"
SEOUL_OLDEST = datetime(2026, 11, 24, 9, 0, tzinfo=KST)
SEOUL_NEWEST = datetime(2026, 11, 24, 10, 0, tzinfo=KST)
BUSAN_AT = datetime(2026, 11, 24, 9, 30, tzinfo=KST)
BUDGET = 100_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[SimulatorServer, Simulator]]:
    with running_simulator(walk_interval=0, service_key="health-key") as running:
        yield running


@pytest.fixture
def figures_cleared() -> None:
    """No ingestion figures and no calls today yet, whatever earlier tests of the run did."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(KEY, calls_key(time.time()))
    client.close()


@dataclass(frozen=True)
class Polled:
    seoul_hospitals: int
    busan_hospitals: int
    seoul_success: tuple[int, int]  # unix ms before and after its successful poll
    busan_success: tuple[int, int]
    calls: int  # upstream calls the simulator answered


def _now_ms() -> int:
    return int(time.time() * 1000)


def _poll(region: str) -> tuple[int, int]:
    before = _now_ms()
    with polls.ingestion_tools() as tools:
        polls.poll_region_beds(tools, region)
    return before, _now_ms()


def _poll_fails(region: str) -> None:
    with polls.ingestion_tools() as tools, pytest.raises(UpstreamUnavailable):
        polls.poll_region_beds(tools, region)


@pytest.fixture
def polled(
    simulator: tuple[SimulatorServer, Simulator], settings: Settings, figures_cleared: None
) -> Polled:
    """Through the real ingestion path: Seoul polled once (its hospitals' hvidates between
    SEOUL_OLDEST and SEOUL_NEWEST), Busan polled once (all at BUSAN_AT) and then failing twice
    (stale at once: INGEST_STALE_AFTER_SECONDS is 0), Daegu failing once before any success."""
    server, sim = simulator
    settings.UPSTREAM_BASE_URL, settings.UPSTREAM_SERVICE_KEY = server.api_url, "health-key"
    settings.UPSTREAM_DAILY_CALL_BUDGET = BUDGET
    settings.UPSTREAM_TIMEOUT_SECONDS = 1
    settings.INGEST_STALE_AFTER_SECONDS = 0
    seoul = [h["hpid"] for h in sim.hospital_list(SEOUL)]
    busan = [h["hpid"] for h in sim.hospital_list(BUSAN)]
    assert len(seoul) > 2
    assert busan
    for n, hpid in enumerate(seoul):
        at = SEOUL_OLDEST + (SEOUL_NEWEST - SEOUL_OLDEST) * n / (len(seoul) - 1)
        sim.update_hospital(str(hpid), hvidate=at.strftime("%Y%m%d%H%M%S"))
    for hpid in busan:
        sim.update_hospital(str(hpid), hvidate=BUSAN_AT.strftime("%Y%m%d%H%M%S"))
    sim.reset_stats()
    seoul_success = _poll(SEOUL)
    busan_success = _poll(BUSAN)
    sim.add_fault("http500", regions=[BUSAN, DAEGU])
    try:
        _poll_fails(BUSAN)
        _poll_fails(BUSAN)
        _poll_fails(DAEGU)
    finally:
        sim.clear_faults()
    calls = sim.stats()["calls"]
    assert isinstance(calls, int)
    return Polled(len(seoul), len(busan), seoul_success, busan_success, calls)


def _async_redis() -> "redis.asyncio.Redis":
    return redis.asyncio.Redis.from_url(settings.REDIS_URL)


async def _read_section() -> dict[str, Any]:
    client = _async_redis()
    try:
        return await aread_region_health(client)
    finally:
        await client.aclose()


def test_region_health_from_real_polls(polled: Polled) -> None:
    """One row per region polled, by code: its hospitals, the newest and oldest hvidate, the
    last success, staleness and failures; today's calls against the budget."""
    section = asyncio.run(_read_section())
    seoul, busan, daegu = section["regions"]

    last_success = seoul.pop("last_success_at")
    assert polled.seoul_success[0] <= last_success <= polled.seoul_success[1]
    assert seoul == {
        "region_code": SEOUL,
        "name": "서울특별시",
        "hospitals": polled.seoul_hospitals,
        "newest_data_at": _ms(SEOUL_NEWEST),
        "oldest_data_at": _ms(SEOUL_OLDEST),
        "stale": False,
        "stale_since": None,
        "consecutive_failures": 0,
        "polls_failed": 0,
        "last_error": "",
    }

    last_success, stale_since = busan.pop("last_success_at"), busan.pop("stale_since")
    assert polled.busan_success[0] <= last_success <= polled.busan_success[1]
    assert last_success < stale_since <= _now_ms()
    assert busan.pop("last_error").startswith("UpstreamUnavailable: ")
    assert busan == {
        "region_code": BUSAN,
        "name": "부산광역시",
        "hospitals": polled.busan_hospitals,
        "newest_data_at": _ms(BUSAN_AT),
        "oldest_data_at": _ms(BUSAN_AT),
        "stale": True,
        "consecutive_failures": 2,
        "polls_failed": 2,
    }

    assert daegu.pop("last_error").startswith("UpstreamUnavailable: ")
    assert daegu == {
        "region_code": DAEGU,
        "name": "대구광역시",
        "hospitals": 0,
        "last_success_at": None,
        "newest_data_at": None,
        "oldest_data_at": None,
        "stale": False,  # its first failure: not yet overdue
        "stale_since": None,
        "consecutive_failures": 1,
        "polls_failed": 1,
    }

    assert polled.calls == 5
    assert section["calls_used_today"] == polled.calls
    assert section["daily_call_budget"] == BUDGET
    assert section["calls_left_today"] == BUDGET - polled.calls
    assert list(section) == ["regions", "calls_used_today", "daily_call_budget", "calls_left_today"]


def test_region_data_is_two_queries(
    polled: Polled, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """However many hospitals: one aggregate grouped by region, one read of the freshness."""
    with django_assert_num_queries(2):
        regions = region_data_list()
    assert [r.region_code for r in regions] == [SEOUL, BUSAN, DAEGU]


def test_failed_beds_polls_are_counted_per_region(polled: Polled) -> None:
    """Each failed beds poll counts for its region, beside the operation's own count; a
    region whose polls worked has no failures counted."""
    figures = read_ingestion_metrics(redis.Redis.from_url(settings.REDIS_URL))
    assert figures[f"region:{BUSAN}:polls_failed"] == 2
    assert figures[f"region:{DAEGU}:polls_failed"] == 1
    assert f"region:{SEOUL}:polls_failed" not in figures
    assert figures[f"{upstream.BEDS}:polls_failed"] == 3
    assert figures[f"{upstream.BEDS}:polls_failed:UpstreamUnavailable"] == 3
    assert f"region:{SEOUL}:last_success" in figures
    assert f"region:{DAEGU}:last_success" not in figures


def test_prometheus_shows_region_health(polled: Polled, api: Client) -> None:
    """/metrics has each region's data age (newest, oldest), stale flag and failed polls, and
    the calls left today; the database-backed figures are a source of their own."""
    text = api.get("/metrics", headers=metrics_headers()).content.decode()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    newest = float(lines[f'weer_ingestion_region_data_age_seconds{{of="newest",region="{SEOUL}"}}'])
    oldest = float(lines[f'weer_ingestion_region_data_age_seconds{{of="oldest",region="{SEOUL}"}}'])
    assert oldest - newest == pytest.approx(3600, abs=2)
    assert newest == pytest.approx(time.time() - SEOUL_NEWEST.timestamp(), abs=60)
    assert f'weer_ingestion_region_data_age_seconds{{of="newest",region="{DAEGU}"}}' not in lines
    assert lines[f'weer_ingestion_region_stale{{region="{BUSAN}"}}'] == "1.0"
    assert lines[f'weer_ingestion_region_stale{{region="{SEOUL}"}}'] == "0.0"
    assert lines[f'weer_ingestion_region_stale{{region="{DAEGU}"}}'] == "0.0"
    assert lines[f'weer_ingestion_region_polls_failed_total{{region="{BUSAN}"}}'] == "2.0"
    assert lines[f'weer_ingestion_region_polls_failed_total{{region="{DAEGU}"}}'] == "1.0"
    assert lines['weer_upstream_calls_today{of="left"}'] == f"{float(BUDGET - polled.calls)}"
    assert lines['weer_upstream_calls_today{of="used"}'] == f"{float(polled.calls)}"
    last_success = f'weer_ingestion_region_last_success_timestamp_seconds{{region="{SEOUL}"}}'
    assert float(lines[last_success]) * 1000 >= polled.seoul_success[0]
    assert lines['weer_metrics_source_up{source="ingestion_regions"}'] == "1.0"


@pytest.mark.asyncio
async def test_metrics_stream_carries_ingestion_regions(
    daphne_server: DaphneServer, figures_cleared: None
) -> None:
    """An admin subscribed to ``metrics`` gets the ``ingestion_regions`` section, every
    region with hospitals or polls, exactly as the console renders it."""
    admin = await asyncio.to_thread(UserFactory, role=Role.ADMIN)
    newest = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    oldest = newest - timedelta(minutes=20)
    for hvidate in (newest, oldest):
        hospital = await asyncio.to_thread(HospitalFactory, region_code="50", sido="제주특별자치도")
        await asyncio.to_thread(ERStatusFactory, hospital=hospital, hvidate=hvidate)
    await asyncio.to_thread(region_poll_failed, region_code="50", error="UpstreamUnavailable: 500")
    sync_client = redis.Redis.from_url(settings.REDIS_URL)
    metrics = IngestionMetrics(sync_client)
    metrics.region_succeeded("50")
    metrics.poll_failed(upstream.BEDS, UpstreamUnavailable("500"), region_code="50")
    last_success = round(float(sync_client.hget(KEY, "region:50:last_success") or 0) * 1000)
    expected = {
        "regions": [
            {
                "region_code": "50",
                "name": "제주특별자치도",
                "hospitals": 2,
                "last_success_at": last_success,
                "newest_data_at": _ms(newest),
                "oldest_data_at": _ms(oldest),
                "stale": False,
                "stale_since": None,
                "consecutive_failures": 1,
                "polls_failed": 1,
                "last_error": "UpstreamUnavailable: 500",
            }
        ],
        "calls_used_today": 0,
        "daily_call_budget": settings.UPSTREAM_DAILY_CALL_BUDGET,
        "calls_left_today": settings.UPSTREAM_DAILY_CALL_BUDGET,
    }
    async with WsClient.connect(daphne_server, access_token_issue(user=admin)) as client:
        await client.subscribe("metrics")
        await client.next()  # the snapshot: the latest figures, perhaps from before this test
        deadline = time.monotonic() + 10
        while (section := (await client.next())["data"].get("ingestion_regions")) != expected:
            assert time.monotonic() < deadline, section  # reported once a second
