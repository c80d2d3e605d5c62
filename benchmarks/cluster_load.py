"""``weer-loadtest`` through a Redis Cluster: ``weer-serve --processes 2`` whose realtime engine
is a 3-master, 3-replica cluster on loopback (``tests/redis_cluster.py``), or, for comparison, a
single Redis of its own. Prints the load test's report and, per Redis node, the commands it ran
and the CPU it used per published event (INFO commandstats and cpu, before and after).

    DATABASE_URL=mysql://root@127.0.0.1:3306/weer_perf REDIS_URL=redis://127.0.0.1:6379/7 \\
    SECRET_KEY=... JWT_SIGNING_KEY=... METRICS_TOKEN=... LIMIT_WS_CONNECTS_PER_ADDRESS=off \\
    .venv/bin/python benchmarks/cluster_load.py --engine cluster --tokens tokens.txt \\
        --clients 10000 --rate 20 --duration 30 --storm-percent 50 --json out.json

The database needs the demo hospitals (``DEMO=true manage.py seed_demo``) and the tokens file
``manage.py issue_tokens --role ambulance --count 10000``. Loopback only; every server it starts
is stopped at the end."""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.redis_cluster import RedisCluster, _free_block, run_redis_cluster  # noqa: E402

STREAM = "loadtest.cluster"


def _figures(client: redis.Redis) -> dict[str, float]:
    """Calls per command and the server's CPU seconds, now."""
    stats = client.info("commandstats")
    cpu = client.info("cpu")
    figures = {name.removeprefix("cmdstat_"): float(v["calls"]) for name, v in stats.items()}
    figures["cpu_s"] = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return figures


@contextlib.contextmanager
def _single_redis(directory: Path) -> Iterator[tuple[str, dict[str, redis.Redis]]]:
    port = _free_block(1)
    process = subprocess.Popen(  # noqa: S603  (our own commands)
        [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", {f"single:{port}": client}
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _engine(kind: str, directory: Path) -> Iterator[tuple[str, dict[str, redis.Redis]]]:
    if kind == "single":
        with _single_redis(directory) as engine:
            yield engine
        return
    with run_redis_cluster(directory) as cluster:
        yield cluster.url, _cluster_nodes(cluster)


def _cluster_nodes(cluster: RedisCluster) -> dict[str, redis.Redis]:
    roles = {n.port: n.client.info("replication")["role"] for n in cluster.nodes}
    return {f"{roles[n.port]}:{n.port}": n.client for n in cluster.nodes}


@contextlib.contextmanager
def _server(env: dict[str, str], port: int, log: Path) -> Iterator[list[int]]:
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603  (our own commands)
            [
                sys.executable,
                "-m",
                "realtime.serving.serve",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--processes",
                "2",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            children = subprocess.run(  # noqa: S603  (our own commands)
                [shutil.which("pgrep") or "pgrep", "-P", str(server.pid)],
                capture_output=True,
                text=True,
            ).stdout.split()
            yield [int(pid) for pid in children]
        finally:
            server.terminate()
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["cluster", "single"], default="cluster")
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--storm-percent", type=float, default=50)
    parser.add_argument("--json", help="write the load test's report and the Redis figures here")
    options = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as scratch,
        _engine(options.engine, Path(scratch)) as (
            url,
            nodes,
        ),
    ):
        port = _free_block(1)
        env = {
            **os.environ,
            "REALTIME_REDIS_URL": url,
            "WEB_DRAIN_SECONDS": "2",
            "DJANGO_SETTINGS_MODULE": "project.settings",
        }
        with _server(env, port, Path(scratch) / "server.log") as pids:
            before = {name: _figures(client) for name, client in nodes.items()}
            report = Path(scratch) / "report.json"
            run = subprocess.run(  # noqa: S603  (our own commands)
                [
                    sys.executable,
                    "-m",
                    "loadtest",
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--tokens",
                    options.tokens,
                    "--clients",
                    str(options.clients),
                    "--processes",
                    "2",
                    "--drive",
                    "publish",
                    "--stream",
                    STREAM,
                    "--rate",
                    str(options.rate),
                    "--duration",
                    str(options.duration),
                    "--storm-percent",
                    str(options.storm_percent),
                    "--json",
                    str(report),
                    "--server-pids",
                    ",".join(map(str, pids)),
                ],
                env=env,
                cwd=ROOT,
            )
            after = {name: _figures(client) for name, client in nodes.items()}
        loadtest: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    events = options.rate * options.duration
    redis_figures = {}
    for name in nodes:
        delta = {k: after[name].get(k, 0) - before[name].get(k, 0) for k in after[name]}
        commands = {k: int(v) for k, v in delta.items() if k != "cpu_s" and v}
        redis_figures[name] = {
            "cpu_s": round(delta["cpu_s"], 2),
            "cpu_ms_per_event": round(delta["cpu_s"] * 1000 / events, 3),
            "commands_per_event": round(sum(commands.values()) / events, 2),
            "commands": commands,
        }
        print(
            f"{name}: {redis_figures[name]['commands_per_event']} commands and "
            f"{redis_figures[name]['cpu_ms_per_event']} ms CPU per event; {commands}"
        )
    if options.json:
        Path(options.json).write_text(
            json.dumps(
                {
                    "engine": options.engine,
                    "options": vars(options),
                    "loadtest": loadtest,
                    "redis": redis_figures,
                },
                indent=2,
            )
        )
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
