"""``weer-loadtest``: prove a deployment fans bed changes out to every tablet fast enough.

Opens N authenticated websocket clients spread over several processes (uvloop when installed),
subscribes them, drives events, and measures what every client received: connect rate and
failures, delivery latency from the event's ``ts``, per-event completion (until the last client
has it), deliveries per second, lost events (seq gaps, including events never received) and
duplicates — and optionally a reconnect storm, where a share of the clients drop at once and
resume with ``since``. Clients closed with 1012 (a server process draining: a rolling deploy
during the run) reconnect after a random delay and resume with ``since``, as tablets do.
Prints progress and a report, writes the report as JSON, and exits 1 when a threshold
(``--max-p99-ms``, ``--max-lost``, …) is missed or a client failed to resume.

Events are driven through the real path by default (``--drive simulator``: exact values are set
on the upstream simulator's control API and the deployment's own ingestion picks them up, so
latency then includes its polling interval; clients listen on ``beds.all`` unless ``--stream``
says otherwise). ``--drive publish`` publishes ``loadtest.tick`` events directly through the one
publishing path (operators only: it needs the deployment's Redis and settings), and only to a
``loadtest.<name>`` stream given with ``--stream``, which nothing else publishes to and no
tablet reads: a load test never shows fake bed changes. Tokens come from ``manage.py
issue_tokens``.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.drivers import LOADTEST_PREFIX
from loadtest.report import progress
from loadtest.run import run
from loadtest.targets import run_targets

SIMULATOR_STREAM = "beds.all"  # where the simulated hospital's changes are published too


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weer-loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the deployment")
    p.add_argument("--tokens", required=True, help="file of access tokens, one per line")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="client processes")
    p.add_argument(
        "--drive",
        choices=["simulator", "publish"],
        default="simulator",
        help="simulator: change values upstream, ingestion publishes (the default); publish: "
        "publish loadtest.tick events directly, to the --stream loadtest.<name> only",
    )
    p.add_argument(
        "--stream",
        help=f"the stream every client subscribes to: {SIMULATOR_STREAM} by default with "
        f"--drive simulator; with --drive publish, required and a {LOADTEST_PREFIX}<name> stream",
    )
    p.add_argument("--simulator-url", default="http://127.0.0.1:8001")
    p.add_argument("--hpid", default="A1100015", help="hospital changed in simulator mode")
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of events")
    p.add_argument("--connect-concurrency", type=int, default=200, help="per process")
    p.add_argument(
        "--snapshots",
        choices=["deflate", "json"],
        default="deflate",
        help="ask for compressed snapshots as the pages do (deflate, the default) or not (json)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="simulator mode: seconds to let ingestion catch up after the last change",
    )
    p.add_argument(
        "--storm-percent",
        type=float,
        default=0.0,
        help="drop this share of clients at once, mid-run, and resume them",
    )
    p.add_argument("--storm-at", type=float, default=0.5, help="when, as a share of the run")
    p.add_argument("--max-p99-ms", type=float)
    p.add_argument("--max-lost", type=int)
    p.add_argument("--max-duplicates", type=int, default=0)
    p.add_argument("--max-connect-failures", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the report here too")
    p.add_argument(
        "--targets",
        action="store_true",
        help="run every target scenario of docs/performance.md in turn and check each "
        "(needs 10,000 tokens in --tokens and --staff-token); other scenario options are ignored",
    )
    p.add_argument(
        "--staff-token",
        type=Path,
        help="--targets: file with an ER staff token, for the reservation round trips",
    )
    p.add_argument(
        "--metrics-token-file",
        type=Path,
        help="--targets: file holding the deployment's METRICS_TOKEN, to read its /metrics "
        "(bin/start writes var/metrics-token)",
    )
    p.add_argument(
        "--server-pids",
        type=lambda text: [int(pid) for pid in text.split(",") if pid],
        default=[],
        help="comma-separated ids of server processes on this machine: report their CPU too",
    )
    return p


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options, ``stream`` filled in; exits 2 with a message on a bad one
    (as argparse does), including a stream its drive may not use (``--targets`` chooses its
    own streams, so there ``--stream`` and ``--drive`` are ignored)."""
    p = parser()
    options = p.parse_args(argv)
    if options.targets:
        return options
    if options.drive == "publish":
        # Fake events published to a stream real clients read would show them bed changes
        # that never happened: direct publishing is for the load test's own streams only.
        if options.stream is None or not options.stream.startswith(LOADTEST_PREFIX):
            p.error(
                "--drive publish publishes fake events, so it needs --stream "
                f"{LOADTEST_PREFIX}<name> (a stream only load tests use), "
                f"not {options.stream or 'none'}"
            )
    elif options.stream is None:
        options.stream = SIMULATOR_STREAM
    elif options.stream.startswith(LOADTEST_PREFIX):
        p.error(
            f"--drive simulator: ingestion publishes to beds.* streams, never to "
            f"{options.stream}; use --drive publish for {LOADTEST_PREFIX}* streams"
        )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """``weer-loadtest``: 0 when every threshold (or with ``--targets`` every target) is met,
    1 when one is missed; bad options exit 2 before anything runs."""
    options = parse_options(argv)
    if options.targets:
        return run_targets(options)
    report = run(options)
    text = json.dumps(report, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text)
    problems = _failed_thresholds(report, options)
    for problem in problems:
        progress(f"THRESHOLD MISSED: {problem}")
    return 1 if problems else 0


def _failed_thresholds(report: dict[str, Any], options: argparse.Namespace) -> list[str]:
    problems = []
    if options.max_p99_ms is not None and not report["latency_ms"]["p99"] <= options.max_p99_ms:
        problems.append(f"p99 {report['latency_ms']['p99']} ms > {options.max_p99_ms} ms")
    if options.max_lost is not None and report["lost"] > options.max_lost:
        problems.append(f"lost {report['lost']} > {options.max_lost}")
    if options.max_duplicates is not None and report["duplicates"] > options.max_duplicates:
        problems.append(f"duplicates {report['duplicates']} > {options.max_duplicates}")
    if report["connect_failures"] > options.max_connect_failures:
        problems.append(f"{report['connect_failures']} connect failures")
    storm = report["reconnect_storm"]
    if storm and storm["resume_failures"]:
        problems.append(f"{storm['resume_failures']} clients failed to resume")
    if report["service_restarts"]["failures"]:
        problems.append(
            f"{report['service_restarts']['failures']} clients failed to resume after a "
            "service restart (1012)"
        )
    return problems


if __name__ == "__main__":
    sys.exit(main())
