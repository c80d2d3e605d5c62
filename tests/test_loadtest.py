"""weer-loadtest at small scale against a real daphne process: nothing lost, nothing doubled,
also across a reconnect storm; and it publishes fake events only to loadtest.* streams."""

from pathlib import Path

import pytest
from django.conf import settings

from domain.models import Role
from domain.services.tokens import access_token_issue
from domain.services.users import synthetic_users_ensure
from loadtest.cli import main, parse_options
from loadtest.run import run
from loadtest.targets import server_memory
from tests.conftest import DaphneServer
from tests.polling import wait_for

on_a_real_server = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    users = synthetic_users_ensure(role=Role.AMBULANCE, count=200)
    path = tmp_path / "tokens.txt"
    path.write_text("".join(f"{access_token_issue(user=u)}\n" for u in users))
    return path


@on_a_real_server
def test_two_hundred_clients_lose_nothing(daphne_server: DaphneServer, tokens: Path) -> None:
    """200 clients in 2 processes, 100 events, half of them dropped and resumed mid-run."""
    options = parse_options(
        [
            "--url",
            daphne_server.http_url,
            "--tokens",
            str(tokens),
            "--clients",
            "200",
            "--processes",
            "2",
            "--drive",
            "publish",
            "--stream",
            "loadtest.ci",
            "--rate",
            "20",
            "--duration",
            "5",
            "--storm-percent",
            "50",
        ]
    )
    report = run(options)
    assert report["connected"] == 200
    assert report["connect_failures"] == 0
    assert report["lost"] == 0
    assert report["duplicates"] == 0
    assert report["deliveries"] == report["expected_deliveries"] == 200 * 100
    assert report["reconnect_storm"]["resumed"] == 100
    assert report["latency_ms"]["p50"] > 0


@on_a_real_server
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
            "--drive",
            "publish",
            "--stream",
            "loadtest.threshold",
            "--rate",
            "10",
            "--duration",
            "1",
            "--max-p99-ms",
            "0.001",
        ]
    )
    assert code == 1


@on_a_real_server
def test_server_memory_is_read_from_the_deployments_metrics(
    daphne_server: DaphneServer, tokens: Path
) -> None:
    """--targets divides the server's resident-memory growth by the sockets it added: both
    come from /metrics, reported by every server process."""
    warm_up = ["--url", daphne_server.http_url, "--tokens", str(tokens), "--clients", "5"]
    publish = ["--drive", "publish", "--stream", "loadtest.memory"]
    run(parse_options([*warm_up, *publish, "--rate", "1", "--duration", "1"]))
    before = _server_memory_once(daphne_server, connections=0)  # the warm-up's have closed
    options = parse_options(
        [
            *("--url", daphne_server.http_url, "--tokens", str(tokens), "--clients", "50"),
            *("--processes", "1", *publish, "--rate", "1", "--duration", "1"),
        ]
    )
    report = run(options, on_connected=lambda: _server_memory_once(daphne_server, connections=50))
    during = report["at_connected"]
    assert during["processes"] == before["processes"] >= 1
    assert during["connections"] == before["connections"] + 50
    assert during["rss_bytes"] > 0
    assert during["peak_connections"] >= during["connections"]


def test_the_default_drive_is_the_simulator_on_beds_all() -> None:
    """Without --drive nothing is published directly: ingestion's real events to beds.all."""
    options = parse_options(["--tokens", "tokens.txt"])
    assert options.drive == "simulator"
    assert options.stream == "beds.all"


@pytest.mark.parametrize("stream", [[], ["--stream", "beds.all"], ["--stream", "hospital.A1"]])
def test_publishing_to_a_stream_tablets_read_is_refused(
    stream: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--drive publish needs a loadtest.<name> stream: fake events never reach real clients."""
    with pytest.raises(SystemExit) as refused:
        parse_options(["--tokens", "tokens.txt", "--drive", "publish", *stream])
    assert refused.value.code == 2
    assert "--stream loadtest.<name>" in capsys.readouterr().err


def test_the_simulator_drive_refuses_a_loadtest_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """Ingestion never publishes to loadtest.* streams: a simulator run there would see nothing."""
    with pytest.raises(SystemExit) as refused:
        parse_options(["--tokens", "tokens.txt", "--stream", "loadtest.x"])
    assert refused.value.code == 2
    assert "--drive publish" in capsys.readouterr().err


def test_publishing_to_a_loadtest_stream_is_accepted() -> None:
    """--drive publish with a loadtest.<name> stream parses as given."""
    options = parse_options(["--tokens", "t", "--drive", "publish", "--stream", "loadtest.x"])
    assert (options.drive, options.stream) == ("publish", "loadtest.x")


def _server_memory_once(server: DaphneServer, *, connections: int) -> dict[str, int]:
    """The server's figures once its processes report ``connections`` open sockets (each
    reports once a second)."""

    def reported() -> dict[str, int] | None:
        figures = server_memory(server.http_url, settings.METRICS_TOKEN)
        return figures if figures["connections"] == connections else None

    return wait_for(reported, f"{connections} connections reported", timeout=10)
