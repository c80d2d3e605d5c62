"""CPU cost of one full beds cycle: all 17 regions fetched from the simulator, parsed, diffed
against MariaDB and applied (changed rows written, events published to Redis).

    DEMO=1 DATABASE_URL=mysql://root@127.0.0.1:3306/weer REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python benchmarks/ingest_cycle.py --cycles 5 --change-fraction 0.1

Uses the database it is given (seed it first: ``manage.py migrate && manage.py seed_demo``);
the simulator runs in a thread of this process, so its CPU is measured separately and
subtracted. Prints per-cycle CPU seconds of the ingestion side, and of parsing + diffing alone.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402

from domain.models import ERStatus  # noqa: E402
from domain.regions import REGIONS  # noqa: E402
from domain.status_diff import diff_values  # noqa: E402
from ingestion import polls, upstream  # noqa: E402
from ingestion.budget import CallBudget  # noqa: E402
from ingestion.metrics import IngestionMetrics  # noqa: E402
from ingestion.parsing import parse_bed_record, parse_page  # noqa: E402
from ingestion.simulator import running_simulator  # noqa: E402


def _thread_cpu(thread: threading.Thread) -> float:
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--change-fraction", type=float, default=0.1)
    args = parser.parse_args()
    # A new seed each run: the walk is deterministic per seed, so a repeated seed would walk
    # to values an earlier run already stored.
    seed = time.time_ns()
    with running_simulator(
        seed=seed, walk_interval=0, change_fraction=args.change_fraction, service_key="bench"
    ) as (server, simulator):
        http_threads = lambda: [t for t in threading.enumerate() if t.name.startswith("sim")]  # noqa: E731
        client = upstream.UpstreamClient(base_url=server.api_url, service_key="bench")
        connection = redis.Redis.from_url(settings.REDIS_URL)
        tools = polls.Tools(client, CallBudget(connection, 10**9), IngestionMetrics(connection))
        for region in REGIONS:  # warm up: first load
            polls.poll_region_beds(tools, region.code)
        hospitals = ERStatus.objects.count()
        rows = []
        for cycle in range(args.cycles):
            changed_upstream = simulator.walk_step() if cycle else []
            sim_before = sum(_thread_cpu(t) for t in http_threads())
            cpu, wall = time.process_time(), time.perf_counter()
            changed = sum(len(polls.poll_region_beds(tools, r.code).changed) for r in REGIONS)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            sim_cpu = sum(_thread_cpu(t) for t in http_threads()) - sim_before
            rows.append((len(changed_upstream), changed, cpu - sim_cpu, wall))
            print(
                f"cycle {cycle}: upstream changed {len(changed_upstream)}, applied changes "
                f"{changed}, ingestion CPU {cpu - sim_cpu:.3f} s, wall {wall:.3f} s"
            )
        bodies = [
            client._http.get(  # noqa: SLF001 - the raw bodies, over the same pooled connection
                f"{server.api_url}/{upstream.BEDS}",
                params={"serviceKey": "bench", "numOfRows": "1000", "STAGE1": r.name},
            ).content
            for r in REGIONS
        ]
        stored = {s.hospital.hpid: s.values() for s in ERStatus.objects.select_related("hospital")}
        cpu = time.process_time()
        for body in bodies:
            for item in parse_page(body).items:
                report = parse_bed_record(item)
                diff_values(stored.get(report.hpid, {}), report.values)
        pure = time.process_time() - cpu
        steady = [r[2] for r in rows[1:]] or [rows[0][2]]
        print(
            f"\n{hospitals} hospitals, 17 regions. Ingestion CPU per cycle (excluding the "
            f"simulator): median {statistics.median(steady):.3f} s, max {max(steady):.3f} s. "
            f"Parsing + diffing alone: {pure:.3f} s per cycle."
        )


if __name__ == "__main__":
    main()
