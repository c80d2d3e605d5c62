"""weer-loadtest at small scale against a real daphne process: nothing lost, nothing doubled,
also across a reconnect storm."""

from pathlib import Path

import pytest

from domain.models import Role
from domain.services.tokens import access_token_issue
from domain.services.users import synthetic_users_ensure
from realtime.loadtest import main, parser, run
from tests.conftest import DaphneServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    users = synthetic_users_ensure(role=Role.AMBULANCE, count=200)
    path = tmp_path / "tokens.txt"
    path.write_text("".join(f"{access_token_issue(user=u)}\n" for u in users))
    return path


def test_two_hundred_clients_lose_nothing(daphne_server: DaphneServer, tokens: Path) -> None:
    """200 clients in 2 processes, 100 events, half of them dropped and resumed mid-run."""
    options = parser().parse_args(
        [
            "--url",
            daphne_server.http_url,
            "--tokens",
            str(tokens),
            "--clients",
            "200",
            "--processes",
            "2",
            "--stream",
            "beds.43",
            "--rate",
            "20",
            "--duration",
            "5",
            "--storm-percent",
            "50",
        ]
    )
    report = run(options)
    assert report["connected"] == 200 and report["connect_failures"] == 0
    assert report["lost"] == 0
    assert report["duplicates"] == 0
    assert report["deliveries"] == report["expected_deliveries"] == 200 * 100
    assert report["reconnect_storm"]["resumed"] == 100
    assert report["latency_ms"]["p50"] > 0


def test_missed_threshold_exits_non_zero(daphne_server: DaphneServer, tokens: Path) -> None:
    """A threshold no run can meet makes the command fail, as CI and operators rely on."""
    code = main(
        [
            "--url",
            daphne_server.http_url,
            "--tokens",
            str(tokens),
            "--clients",
            "10",
            "--processes",
            "1",
            "--stream",
            "beds.44",
            "--rate",
            "10",
            "--duration",
            "1",
            "--max-p99-ms",
            "0.001",
        ]
    )
    assert code == 1
