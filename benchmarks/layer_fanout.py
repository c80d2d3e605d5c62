"""Fan-out micro-benchmark: one event to N in-process receivers, per channel layer.

Variants (all receivers in ONE asyncio process; Redis db 14 only):

* ``core``    channels_redis.core.RedisChannelLayer: one channel per receiver (new_channel),
              group_add each, group_send per event from a second layer instance; every
              receiver loops on ``layer.receive(channel)``, JSON-decodes and re-encodes.
* ``pubsub``  channels_redis.pubsub.RedisPubSubChannelLayer, driven the same way.
* ``redispy`` redis.asyncio: one SUBSCRIBE for the topic, PUBLISH from a separate client; each
              payload (bytes, encoded once by the publisher) is appended to N receivers' lists.

Each delivery records its receipt time after the receiver's "socket write" (list append);
latency = receipt - the event's ``ts`` (actual publish time). ``p99 vs schedule`` measures from
the fixed-rate slot instead, so a publisher that slips behind (coordinated omission) shows up.
Process CPU (time.process_time) covers everything in this process from the first publish to the
last delivery (or the timeout) - with ``--publisher inprocess`` (default) that includes the
publisher. The Redis server's CPU is reported separately (INFO cpu delta of the whole server,
so only meaningful on an otherwise idle Redis).

    .venv/bin/python benchmarks/layer_fanout.py --receivers 1000 --events 200 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import channels
import channels_redis
import redis
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

REDIS_URL = "redis://127.0.0.1:6379/14"
GROUP = "fanout"
Publish = Callable[[int, str], Awaitable[Any]]
Close = Callable[[], Awaitable[Any]]


@dataclass
class Stats:
    """Per-variant bookkeeping shared by the publisher and all receivers."""

    expected: int
    published_ns: list[int] = field(default_factory=list)  # actual ts, by seq
    scheduled_ns: list[int] = field(default_factory=list)  # fixed-rate slot, by seq
    seqs: list[int] = field(default_factory=list)  # one entry per delivery ...
    received_ns: list[int] = field(default_factory=list)  # ... with its receipt time
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, seq: int) -> None:
        self.seqs.append(seq)
        self.received_ns.append(time.time_ns())
        if len(self.seqs) >= self.expected:
            self.done.set()


@dataclass
class Result:
    variant: str
    publisher: str
    receivers: int
    events: int
    rate: float
    json_work: bool
    expected: int
    delivered: int
    lost: int
    timed_out: bool
    achieved_rate: float
    wall_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    p99_vs_schedule_ms: float
    cpu_s: float
    cpu_us_per_delivery: float
    redis_cpu_s: float


def make_payload(seq: int, ts: int) -> str:
    """~230-byte JSON event carrying its publish timestamp in ns."""
    event = {
        "type": "bed.update",
        "stream": "hospital.0042",
        "seq": seq,
        "ts": ts,
        "data": {
            "hospital": 42,
            "department": "emergency",
            "beds_free": 7,
            "beds_total": 24,
            "status": "open",
            "updated_by": "ingest",
            "note": "x" * 28,
        },
    }
    return json.dumps(event, separators=(",", ":"))


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not sorted_ns:
        return float("nan")
    return round(sorted_ns[min(len(sorted_ns) - 1, round(q * (len(sorted_ns) - 1)))] / 1e6, 3)


async def redis_server_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


# --- publishers --------------------------------------------------------------------------------


def layer_class(variant: str) -> Any:
    return RedisChannelLayer if variant == "core" else RedisPubSubChannelLayer


async def make_publisher(variant: str, prefix: str) -> tuple[Publish, Close]:
    """A publisher with its own connection, already opened."""
    if variant == "redispy":
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.ping()

        async def publish_redis(seq: int, payload: str) -> None:
            await client.publish(f"{prefix}:topic", payload.encode())

        return publish_redis, client.aclose

    layer = layer_class(variant)(hosts=[REDIS_URL], prefix=prefix)
    await layer.group_send(f"{GROUP}-warmup", {"type": "warmup"})  # opens the connection

    async def publish_layer(seq: int, payload: str) -> None:
        # "seq" rides along for the harness; the consumer's work is on "text"
        await layer.group_send(GROUP, {"type": "event.message", "text": payload, "seq": seq})

    # core's flush() would delete the receivers' pending queue under our prefix: only close pools
    return publish_layer, layer.close_pools if variant == "core" else layer.flush


async def publish_loop(publish: Publish, stats: Stats, events: int, rate: float) -> None:
    """Fixed-rate schedule; if the process is saturated, publishes slip (and that is reported)."""
    loop = asyncio.get_running_loop()
    start, start_ns = loop.time(), time.time_ns()
    for seq in range(events):
        delay = start + seq / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        ts = time.time_ns()
        stats.scheduled_ns.append(start_ns + round(seq * 1e9 / rate))
        stats.published_ns.append(ts)
        await publish(seq, make_payload(seq, ts))


def publisher_process(
    variant: str, prefix: str, events: int, rate: float, conn: Connection
) -> None:
    """--publisher subprocess: publish from another OS process, like a separate worker would."""

    async def run() -> None:
        publish, close = await make_publisher(variant, prefix)
        conn.send("ready")
        await asyncio.to_thread(conn.recv)  # "go"
        stats = Stats(expected=0)
        await publish_loop(publish, stats, events, rate)
        conn.send((stats.published_ns, stats.scheduled_ns))
        await close()

    asyncio.run(run())


# --- receivers ---------------------------------------------------------------------------------


async def layer_receiver(
    layer: Any, channel: str, out: list[str], stats: Stats, work: bool
) -> None:
    while True:
        message = await layer.receive(channel)
        if work:  # what a consumer handler does: decode the event, re-encode the frame
            out.append(json.dumps(json.loads(message["text"]), separators=(",", ":")))
        else:  # forward the already-encoded text as-is
            out.append(message["text"])
        stats.record(message["seq"])


async def setup_layer_receivers(
    variant: str, prefix: str, n: int, stats: Stats, work: bool
) -> tuple[list[asyncio.Task[None]], Close]:
    layer = layer_class(variant)(hosts=[REDIS_URL], prefix=prefix)
    tasks = []
    for _ in range(n):
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        out: list[str] = []
        tasks.append(asyncio.create_task(layer_receiver(layer, channel, out, stats, work)))
    return tasks, layer.flush


class Receiver:
    """Stands in for a websocket: the payload is written as-is."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: list[bytes] = []


async def redispy_reader(pubsub: Any, receivers: list[Receiver], stats: Stats) -> None:
    async for message in pubsub.listen():
        payload: bytes = message["data"]
        seq = int(payload.split(b'"seq":', 1)[1].split(b",", 1)[0])  # harness-only, once per event
        for receiver in receivers:
            receiver.out.append(payload)
            stats.record(seq)


async def setup_redispy_receivers(
    prefix: str, n: int, stats: Stats
) -> tuple[list[asyncio.Task[None]], Close]:
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub: Any = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"{prefix}:topic")
    receivers = [Receiver() for _ in range(n)]

    async def close() -> None:
        await pubsub.aclose()
        await client.aclose()

    return [asyncio.create_task(redispy_reader(pubsub, receivers, stats))], close


# --- driver ------------------------------------------------------------------------------------


async def recv(conn: Connection, wait_s: float) -> Any:
    """Receive from the publisher subprocess without hanging forever if it died."""
    if not await asyncio.to_thread(conn.poll, wait_s):
        raise RuntimeError("publisher subprocess did not answer")
    return conn.recv()


async def run_variant(variant: str, args: argparse.Namespace) -> Result:
    n, e, rate, prefix = args.receivers, args.events, args.rate, args.prefix
    stats = Stats(expected=n * e)
    admin = aioredis.Redis.from_url(REDIS_URL)
    if variant == "redispy":
        tasks, close_receivers = await setup_redispy_receivers(prefix, n, stats)
    else:
        tasks, close_receivers = await setup_layer_receivers(
            variant, prefix, n, stats, args.json_work
        )

    conn: Connection | None = None
    if args.publisher == "subprocess":
        conn, child_conn = multiprocessing.Pipe()
        proc = multiprocessing.get_context("spawn").Process(
            target=publisher_process, args=(variant, prefix, e, rate, child_conn)
        )
        proc.start()
        await recv(conn, 60)  # "ready"
    else:
        publish, close_publisher = await make_publisher(variant, prefix)

    await asyncio.sleep(1.0)  # let subscriptions settle and receivers park in receive()
    gc.collect()
    redis_cpu0 = await redis_server_cpu(admin)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if conn is not None:
        conn.send("go")
        stats.published_ns, stats.scheduled_ns = await recv(conn, 2 * e / rate + args.timeout)
    else:
        await publish_loop(publish, stats, e, rate)
    try:
        await asyncio.wait_for(stats.done.wait(), timeout=args.timeout)
        timed_out = False
    except TimeoutError:
        timed_out = True
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    redis_cpu_s = await redis_server_cpu(admin) - redis_cpu0

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_receivers()
    if conn is not None:
        await asyncio.to_thread(proc.join)
    else:
        await close_publisher()
    await delete_run_keys(admin, prefix)
    await admin.aclose()

    pub, sched = stats.published_ns, stats.scheduled_ns
    lat = sorted(t - pub[s] for s, t in zip(stats.seqs, stats.received_ns, strict=True))
    lat_sched = sorted(t - sched[s] for s, t in zip(stats.seqs, stats.received_ns, strict=True))
    delivered = len(lat)
    return Result(
        variant=variant,
        publisher=args.publisher,
        receivers=n,
        events=e,
        rate=rate,
        json_work=args.json_work and variant != "redispy",
        expected=stats.expected,
        delivered=delivered,
        lost=stats.expected - delivered,
        timed_out=timed_out,
        achieved_rate=round((e - 1) / ((pub[-1] - pub[0]) / 1e9), 1) if e > 1 else rate,
        wall_s=round(wall_s, 3),
        p50_ms=percentile(lat, 0.50),
        p95_ms=percentile(lat, 0.95),
        p99_ms=percentile(lat, 0.99),
        max_ms=percentile(lat, 1.0),
        p99_vs_schedule_ms=percentile(lat_sched, 0.99),
        cpu_s=round(cpu_s, 3),
        cpu_us_per_delivery=round(cpu_s * 1e6 / delivered if delivered else float("nan"), 2),
        redis_cpu_s=round(redis_cpu_s, 3),
    )


async def delete_run_keys(client: aioredis.Redis, prefix: str) -> int:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    return len(keys)


HEADER = (
    f"{'variant':<8} {'N':>5} {'E':>4} {'pub/s':>6} {'deliv':>7} {'lost':>6} {'p50ms':>8} "
    f"{'p95ms':>8} {'p99ms':>8} {'maxms':>8} {'p99sch':>8} {'wall_s':>7} {'cpu_s':>6} "
    f"{'cpu_us/d':>8} {'redis_s':>7}"
)


def row(r: Result) -> str:
    return (
        f"{r.variant:<8} {r.receivers:>5} {r.events:>4} {r.achieved_rate:>6.1f} {r.delivered:>7} "
        f"{r.lost:>6} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f} "
        f"{r.p99_vs_schedule_ms:>8.2f} {r.wall_s:>7.2f} "
        f"{r.cpu_s:>6.2f} {r.cpu_us_per_delivery:>8.2f} {r.redis_cpu_s:>7.2f}"
        + ("  TIMEOUT" if r.timed_out else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--receivers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--timeout", type=float, default=30.0, help="s to wait after last publish")
    parser.add_argument("--variants", default="core,pubsub,redispy")
    parser.add_argument(
        "--publisher",
        choices=["inprocess", "subprocess"],
        default="inprocess",
        help="publish from this process (default) or from a separate OS process",
    )
    parser.add_argument(
        "--no-json-work",
        dest="json_work",
        action="store_false",
        help="channels receivers forward message text as-is (isolates the layer itself)",
    )
    parser.add_argument("--json", dest="json_file", help="write JSON here instead of stdout")
    args = parser.parse_args()
    args.prefix = f"benchfanout{uuid.uuid4().hex[:8]}"  # every key/channel of this run

    results = []
    print(HEADER, flush=True)
    for variant in args.variants.split(","):
        result = asyncio.run(run_variant(variant, args))
        results.append(result)
        print(row(result), flush=True)
        gc.collect()

    report = {
        "argv": sys.argv[1:],
        "payload_bytes": len(make_payload(args.events - 1, time.time_ns())),
        "versions": {
            "python": sys.version.split()[0],
            "channels": channels.__version__,
            "channels_redis": channels_redis.__version__,
            "redis_py": redis.__version__,
        },
        "results": [asdict(r) for r in results],
    }
    text = json.dumps(report, indent=2)
    if args.json_file:
        with open(args.json_file, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
