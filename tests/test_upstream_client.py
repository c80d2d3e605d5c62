"""The upstream client against the simulator over real HTTP, and the shared call budget on
real Redis."""

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from django.conf import settings

from domain.regions import REGIONS_BY_CODE
from ingestion import upstream
from ingestion.budget import BudgetExhausted, CallBudget
from ingestion.errors import (
    UpstreamMalformed,
    UpstreamQuotaExceeded,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ingestion.parsing import KST
from ingestion.simulator import Simulator, SimulatorServer, running_simulator

KEY = "k3y+with/special=chars%"  # as the portal's "decoding" key may look


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[SimulatorServer, Simulator]]:
    with running_simulator(walk_interval=0, service_key=KEY) as running:
        yield running


def _client(
    server: SimulatorServer, key: str = KEY, page_size: int = 1000
) -> upstream.UpstreamClient:
    return upstream.UpstreamClient(
        base_url=server.api_url, service_key=key, timeout=2, page_size=page_size
    )


def test_paging_returns_every_row_once(simulator: tuple[SimulatorServer, Simulator]) -> None:
    """Small pages are followed to totalCount; the key survives URL encoding."""
    server, sim = simulator
    with _client(server, page_size=7) as client:
        items = list(client.fetch_all(upstream.BEDS, STAGE1="서울특별시"))
    hpids = [item["hpid"] for item in items]
    expected = {h["hpid"] for h in sim.hospital_list(region="11")}
    assert len(hpids) == len(set(hpids)) == len(expected)
    assert set(hpids) == expected


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"mode": "http500"}, UpstreamUnavailable),
        ({"mode": "malformed"}, UpstreamMalformed),
        ({"mode": "code22"}, UpstreamQuotaExceeded),
        ({"mode": "code30"}, UpstreamRejected),
        ({"mode": "truncated"}, UpstreamMalformed),
        ({"mode": "timeout", "seconds": 5}, UpstreamUnavailable),
    ],
)
def test_faults_are_typed_errors(
    simulator: tuple[SimulatorServer, Simulator], fault: dict[str, Any], error: type[Exception]
) -> None:
    """Each failure of the upstream surfaces as its typed error, never as data."""
    server, sim = simulator
    sim.add_fault(**fault)
    try:
        with _client(server, page_size=20) as client, pytest.raises(error):
            list(client.fetch_all(upstream.BEDS, STAGE1="서울특별시"))
    finally:
        sim.clear_faults()


def test_wrong_key_is_rejected(simulator: tuple[SimulatorServer, Simulator]) -> None:
    """An unregistered key is the gateway's code 30: a rejection, not a transient error."""
    server, _ = simulator
    with _client(server, key="not-the-key") as client, pytest.raises(UpstreamRejected) as caught:
        client.fetch_page(upstream.BEDS, page_no=1, STAGE1="서울특별시")
    assert caught.value.code == "30"


def test_service_key_never_logged(
    simulator: tuple[SimulatorServer, Simulator], caplog: pytest.LogCaptureFixture
) -> None:
    """No log line of any library, at any level, contains the service key."""
    server, sim = simulator
    caplog.set_level(logging.DEBUG)
    with _client(server) as client:
        list(client.fetch_all(upstream.BEDS, STAGE1=REGIONS_BY_CODE["26"].name))
        sim.add_fault("http500")
        try:
            with pytest.raises(UpstreamUnavailable) as caught:
                client.fetch_page(upstream.BEDS, page_no=1, STAGE1="서울특별시")
        finally:
            sim.clear_faults()
    assert "upstream getEmrrmRltmUsefulSckbdInfoInqire" in caplog.text
    assert KEY not in caplog.text
    assert "k3y" not in caplog.text
    assert "k3y" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_page_polled_is_a_debug_line_and_a_failed_one_is_news(
    simulator: tuple[SimulatorServer, Simulator], caplog: pytest.LogCaptureFixture
) -> None:
    """The demo polls 17 regions every 5 s: a success per page is DEBUG, a failure INFO."""
    server, sim = simulator
    caplog.set_level(logging.DEBUG, logger="ingestion.upstream")
    with _client(server) as client:
        client.fetch_page(upstream.BEDS, page_no=1, STAGE1="서울특별시")
        sim.add_fault("http500")
        try:
            with pytest.raises(UpstreamUnavailable):
                client.fetch_page(upstream.BEDS, page_no=1, STAGE1="서울특별시")
        finally:
            sim.clear_faults()
    pages = [r for r in caplog.records if r.getMessage().startswith("upstream ")]
    assert [(r.levelno, r.getMessage().split(": ")[1].split(" in ")[0]) for r in pages] == [
        (logging.DEBUG, "ok"),
        (logging.INFO, "UpstreamUnavailable"),
    ]


class _Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def connection() -> redis.Redis:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=settings.REDIS_KEY_PREFIX + "upstream:*"):
        client.delete(key)
    return client


def _take_until_refused(budget: CallBudget, most: int = 10_000) -> int:
    """How many calls ``budget`` allows before it refuses one; fails if it allows ``most``."""
    for taken in range(most):
        try:
            budget.take("beds")
        except BudgetExhausted:
            return taken
    raise AssertionError(f"the budget allowed {most} calls in a row")


def test_budget_paces_calls_over_the_day(connection: redis.Redis) -> None:
    """By 01:00 only 1/24 of the day's budget (plus one cycle's burst) may be spent; by noon
    half; never more than the budget."""
    clock = _Clock(datetime(2026, 11, 24, 1, 0, tzinfo=KST))
    budget = CallBudget(connection, 1000, clock=clock)
    taken = _take_until_refused(budget)
    assert taken == int(1000 / 24 + 60)
    assert budget.used_today() == taken
    clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=KST).timestamp()
    _take_until_refused(budget)
    assert budget.used_today() == 500 + 60
    clock.now = datetime(2026, 11, 24, 23, 59, tzinfo=KST).timestamp()
    _take_until_refused(budget, most=1000)
    assert budget.used_today() == 1000


def test_quota_error_pauses_until_midnight_kst(connection: redis.Redis) -> None:
    """After the upstream reports its quota exceeded, no call is made until the next day."""
    clock = _Clock(datetime(2026, 11, 24, 15, 0, tzinfo=KST))
    budget = CallBudget(connection, 1000, clock=clock)
    until = budget.block_until_reset()
    assert until == datetime(2026, 11, 25, 0, 0, tzinfo=KST).timestamp()
    with pytest.raises(BudgetExhausted):
        budget.take("beds")
    clock.now = until + 1
    budget.take("beds")
    assert budget.used_today() == 1
