"""Server memory per idle connection: open N authenticated clients, subscribe each to a stream,
hold them, and report how much the server processes' resident memory grew per connection.

    python benchmarks/connection_memory.py --url ws://127.0.0.1:8010/ws/ --tokens tokens.txt \
        --clients 5000 --pids "$(pgrep -d, -f 'daphne .*8010')"

Memory is read from /proc/<pid>/status (VmRSS) of every given server process, before the first
client connects (after a warm-up of a few connections, so imports and first-use caches are not
counted) and again once every client is subscribed and the server has been idle for a second.
Clients (``loadtest.client``) are spread over several processes (uvloop) and drop
what they are sent after the ``subscribed`` answer.
"""

import argparse
import asyncio
import json
import multiprocessing
import time
from pathlib import Path

import uvloop

from loadtest.client import hold_crowd

WARM_UP = 50


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def hold(url: str, tokens: list[str], stream: str, concurrency: int, ready, release) -> None:
    clients, failures = await hold_crowd(url, tokens, stream, concurrency=concurrency)
    ready.put((len(clients), failures))
    await asyncio.get_running_loop().run_in_executor(None, release.wait)
    await asyncio.gather(*(client.close() for client in clients))


def client_process(url, tokens, stream, concurrency, ready, release) -> None:
    uvloop.run(hold(url, tokens, stream, concurrency, ready, release))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8010/ws/")
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--stream", default="beds.all")
    parser.add_argument(
        "--concurrency", type=int, default=200, help="connects in flight, per process"
    )
    parser.add_argument("--pids", required=True, help="server process ids, comma-separated")
    parser.add_argument("--hold", type=float, default=0, help="seconds to keep the clients after")
    options = parser.parse_args()
    pids = [int(p) for p in options.pids.split(",") if p]
    tokens = options.tokens.read_text().split()
    if len(tokens) < options.clients + WARM_UP:
        parser.error(f"need {options.clients + WARM_UP} tokens")

    context = multiprocessing.get_context("spawn")
    ready, release = context.Queue(), context.Event()

    def start(batch: list[str], processes: int) -> list:
        workers = [
            context.Process(
                target=client_process,
                args=(
                    options.url,
                    batch[i::processes],
                    options.stream,
                    options.concurrency,
                    ready,
                    release,
                ),
            )
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        return workers

    warm = start(tokens[:WARM_UP], 1)
    ready.get()
    time.sleep(1)
    before = rss_kib(pids)
    started = time.monotonic()
    workers = start(tokens[WARM_UP : WARM_UP + options.clients], options.processes)
    connected = failures = 0
    for _ in workers:
        ok, failed = ready.get()
        connected += ok
        failures += failed
    seconds = time.monotonic() - started
    time.sleep(1)
    after = rss_kib(pids)
    per_connection = (after - before) / max(connected, 1)
    print(
        json.dumps(
            {
                "clients": options.clients,
                "connected": connected,
                "failures": failures,
                "connect_seconds": round(seconds, 1),
                "server_rss_before_kib": before,
                "server_rss_after_kib": after,
                "kib_per_connection": round(per_connection, 1),
                "kb_per_connection": round(per_connection * 1.024, 1),
            }
        ),
        flush=True,
    )
    time.sleep(options.hold)
    release.set()
    for worker in [*warm, *workers]:
        worker.join()


if __name__ == "__main__":
    main()
