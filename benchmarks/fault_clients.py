"""The fault run's clients: websockets that follow docs/protocol.md to the letter and keep the
state a tablet (``beds.all``) or an ER screen (``hospital.<hpid>``) keeps, counting everything
that happens to them. Used by ``benchmarks/fault_run.py``.

Each client holds one socket and one stream. It keeps the state from its snapshot, applies
events in order and tracks the last ``seq``; on a close or a dropped connection it reconnects
after a full-jitter backoff (0.5 s doubling to 30 s, reset after a connection that worked) and
subscribes with ``since``; any snapshot (``initial``, ``history_expired``, ``unknown_seq`` or an
unasked ``resync``) replaces its state; an ``unavailable`` error resubscribes after a backoff;
a live event whose ``seq`` is not last + 1 is a gap: counted, then the state is dropped and the
stream resubscribed without ``since``. An event at or below the last ``seq`` is a duplicate:
counted, never applied (the protocol allows none, so any is a failure).

Memory: 1,000 copies of a 500-hospital ``beds.all`` state would be large, so a hospital's state
is an immutable ``BedRecord`` and identical frames are parsed once (``Frames``): clients that
received the same snapshot share its records, and applying the same event to the same record
yields one shared new record (``Transitions``). The reducers are those of
``tests/test_event_replay.py`` (``_apply_bed_event``, ``_apply_reservation_event``).
"""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from loadtest.client import HandshakeError, StreamClient

Json = dict[str, Any]

MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
SILENCE_PING_SECONDS = 20.0
PING_ANSWER_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class BedRecord:
    """What a client keeps of one hospital on a beds stream: the fields events change
    (``data_age_seconds`` and ``ingested_at`` are not carried by events)."""

    hvidate: str | None
    stale: bool
    held: int
    beds: tuple[tuple[str, Any], ...]  # known values only, sorted by name


def bed_record(hospital: Json) -> BedRecord:
    """A snapshot's hospital (``data.hospitals[i]``, as on the wire) as a ``BedRecord``."""
    return BedRecord(
        hospital["hvidate"],
        bool(hospital["stale"]),
        int(hospital["held"]),
        tuple(sorted(hospital["beds"].items())),
    )


_BLANK = BedRecord(None, False, 0, ())


def bed_record_changed(record: BedRecord, data: Json) -> BedRecord:
    """``record`` after a ``beds.changed`` event's ``data``: each change's new value (null:
    unknown, so absent), ``held`` apart, and the event's ``hvidate``."""
    beds = dict(record.beds)
    held = record.held
    for name, change in data["changes"].items():
        if name == "held":
            held = change["new"]
        elif change["new"] is None:  # unknown now: absent, never zero
            beds.pop(name, None)
        else:
            beds[name] = change["new"]
    return BedRecord(data["hvidate"], record.stale, held, tuple(sorted(beds.items())))


class Transitions:
    """Applies events to bed records, once per distinct (record, event): a thousand clients
    applying the same event to the same record share the one result."""

    def __init__(self, limit: int = 200_000) -> None:
        self._memo: dict[tuple[BedRecord, int], tuple[Json, BedRecord]] = {}
        self._limit = limit

    def changed(self, record: BedRecord, event: Json) -> BedRecord:
        # Events are shared through Frames, so id() names one; the memo keeps the event alive
        # and checks it, so an id reused after the event was freed cannot match.
        key = (record, id(event))
        hit = self._memo.get(key)
        if hit is not None and hit[0] is event:
            return hit[1]
        if len(self._memo) >= self._limit:
            self._memo.clear()
        result = bed_record_changed(record, event["data"])
        self._memo[key] = (event, result)
        return result


class Frames:
    """Parses each distinct frame once: every client on a stream receives the same bytes for
    the same event, and usually for the same snapshot. Kept objects are never mutated."""

    def __init__(self, limit: int = 20_000) -> None:
        self._parsed: dict[bytes, Json] = {}
        self._snapshots: dict[int, dict[str, BedRecord]] = {}  # id(message) → records
        self._limit = limit

    def parse(self, raw: bytes) -> Json:
        message = self._parsed.get(raw)
        if message is None:
            if len(self._parsed) >= self._limit:
                self._parsed.clear()  # the events' ids die with them: forget derived memos
                self._snapshots.clear()
            message = self._parsed[raw] = json.loads(raw)
        return message

    def bed_records(self, snapshot: Json) -> dict[str, BedRecord]:
        """The shared records of a ``beds.*`` snapshot message (copy before changing)."""
        records = self._snapshots.get(id(snapshot))
        if records is None:
            records = self._snapshots[id(snapshot)] = {
                h["hpid"]: bed_record(h) for h in snapshot["data"]["hospitals"]
            }
        return records


@dataclass(slots=True)
class ClientCounts:
    """What happened to one client (summed over clients for the report)."""

    events: int = 0
    duplicates: int = 0
    gaps: int = 0
    gaps_repaired: int = 0  # gaps followed by the fresh snapshot they asked for
    seq_reused: int = 0  # a snapshot or subscribed seq below one the client held
    connects: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    resumes_replay: int = 0
    resumes_snapshot: Counter[str] = field(default_factory=Counter)  # by reason
    snapshots: Counter[str] = field(default_factory=Counter)  # every snapshot, by reason
    unavailable: int = 0
    silent_drops: int = 0
    close_codes: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)

    def add(self, other: "ClientCounts") -> None:
        for name in self.__slots__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self, name, mine + theirs)

    def as_json(self) -> Json:
        return {
            name: dict(value) if isinstance(value, Counter) else value
            for name in self.__slots__
            for value in [getattr(self, name)]
        }


class Shared:
    """What all clients of a run share: the frame and transition caches, the time of the
    latest event any client applied (for quiescence), and the random source."""

    def __init__(self, seed: int) -> None:
        self.frames = Frames()
        self.transitions = Transitions()
        self.last_event_at = time.monotonic()
        self.rng = random.Random(seed)


class FollowingClient:
    """One socket following one stream by the protocol's rules (see the module docstring).
    ``phase``: ``connecting``, ``subscribing`` (subscribe sent), ``joining`` (``subscribed``
    received, replay or snapshot next), ``live``, ``unsubscribing`` (after a gap) or
    ``waiting`` (after ``unavailable``)."""

    def __init__(self, index: int, url: str, token: str, stream: str, shared: Shared) -> None:
        self.index = index
        self.url = f"{url}?token={token}"
        self.stream = stream
        self.beds = stream.startswith("beds.")
        self.shared = shared
        self.counts = ClientCounts()
        self.bed_state: dict[str, BedRecord] = {}
        self.reservations: dict[int, Json] = {}
        self.last_seq: int | None = None  # None: no state held
        self.phase = "connecting"
        self.socket: StreamClient | None = None
        self.last_received = time.monotonic()
        self.ping_sent_at: float | None = None
        self._backoff = MIN_BACKOFF
        self._unavailable_backoff = MIN_BACKOFF
        self._worked = False
        self._resume_since: int | None = None
        self._after_gap = False
        self.ever_live = asyncio.Event()
        self.last_repair_at = 0.0  # when a snapshot or a replay last restored the state

    @property
    def live(self) -> bool:
        return self.phase == "live" and self.socket is not None and self.socket.is_open

    # -- the connection loop --------------------------------------------------------------

    async def run(self) -> None:
        """Connect, follow, reconnect: until cancelled."""
        first = True
        while True:
            if not first:
                self._backoff = MIN_BACKOFF if self._worked else min(2 * self._backoff, MAX_BACKOFF)
                await asyncio.sleep(self.shared.rng.uniform(0, self._backoff))
                self.counts.reconnects += 1
            first = False
            self._worked = False
            self.phase = "connecting"
            try:
                socket = await StreamClient.open(self.url)
            except (OSError, TimeoutError, HandshakeError, ConnectionError):
                self.counts.connect_failures += 1
                continue
            self.counts.connects += 1
            self.socket = socket
            self.last_received = time.monotonic()
            self.ping_sent_at = None
            self._subscribe()
            socket.stream_to(self._on_frame)
            try:
                code = await socket.closed
            finally:
                socket.abort()
            self.counts.close_codes[code] += 1
            self.socket = None
            self.phase = "connecting"

    def check_silence(self, now: float) -> None:
        """Called about once a second: ping a socket silent for 20 s, and drop one that has
        not answered anything 10 s after that."""
        socket = self.socket
        if socket is None or not socket.is_open:
            return
        if self.ping_sent_at is None:
            if now - self.last_received > SILENCE_PING_SECONDS:
                self.ping_sent_at = now
                socket.send_text('{"type":"ping"}')
        elif now - self.ping_sent_at > PING_ANSWER_SECONDS:
            self.counts.silent_drops += 1
            socket.abort()

    def _send(self, message: Json) -> None:
        if self.socket is not None and self.socket.is_open:
            self.socket.send_text(json.dumps(message))

    def _subscribe(self) -> None:
        message: Json = {"type": "subscribe", "streams": [self.stream]}
        self._resume_since = self.last_seq
        if self.last_seq is not None:
            message["since"] = {self.stream: self.last_seq}
        self.phase = "subscribing"
        self._send(message)

    def _resubscribe_later(self) -> None:
        delay = self.shared.rng.uniform(0, self._unavailable_backoff)
        self._unavailable_backoff = min(2 * self._unavailable_backoff, MAX_BACKOFF)
        socket = self.socket

        def again() -> None:
            if self.socket is socket and self.phase == "waiting":
                self._subscribe()

        asyncio.get_running_loop().call_later(delay, again)

    # -- messages -------------------------------------------------------------------------

    def _on_frame(self, raw: bytes) -> None:
        self.last_received = time.monotonic()
        self.ping_sent_at = None
        message = self.shared.frames.parse(raw)
        kind = message.get("type")
        if kind != "error":
            self._worked = True
        handler = self._HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, message)
        elif "seq" in message and message.get("stream") == self.stream:
            self._on_event(message)
        else:
            self.counts.anomalies[f"unexpected:{kind}"] += 1

    def _on_subscribed(self, message: Json) -> None:
        if message.get("stream") != self.stream or self.phase != "subscribing":
            self.counts.anomalies["subscribed_out_of_turn"] += 1
            return
        self._unavailable_backoff = MIN_BACKOFF
        head = int(message["seq"])
        if self.last_seq is not None and head < self.last_seq:
            self.counts.seq_reused += 1  # the stream's head went below a seq we hold
        self.phase = "joining"
        if self._resume_since is not None and head == self._resume_since:
            self.counts.resumes_replay += 1  # nothing missed: an empty replay
            self._resume_since = None
            self._go_live()

    def _on_snapshot(self, message: Json) -> None:
        if message.get("stream") != self.stream:
            self.counts.anomalies["snapshot_of_another_stream"] += 1
            return
        reason = str(message.get("reason"))
        seq = int(message["seq"])
        self.counts.snapshots[reason] += 1
        if self.phase == "joining":
            if self._resume_since is not None:
                self.counts.resumes_snapshot[reason] += 1
            if self._after_gap:
                self.counts.gaps_repaired += 1
                self._after_gap = False
        elif reason != "resync" or self.phase != "live":
            self.counts.anomalies[f"snapshot_{reason}_while_{self.phase}"] += 1
        if self.last_seq is not None and seq < self.last_seq:
            self.counts.seq_reused += 1
        self._resume_since = None
        if self.beds:
            self.bed_state = dict(self.shared.frames.bed_records(message))
        else:
            self.reservations = {r["id"]: r for r in message["data"]["reservations"]}
        self.last_seq = seq
        self._go_live()

    def _go_live(self) -> None:
        self.last_repair_at = time.monotonic()
        self.phase = "live"
        self.ever_live.set()

    def _on_event(self, message: Json) -> None:
        if self.phase == "unsubscribing":
            return  # what was in flight before our unsubscribe: known, ignored
        if self.phase not in ("joining", "live") or self.last_seq is None:
            self.counts.anomalies[f"event_while_{self.phase}"] += 1
            return
        seq = int(message["seq"])
        if seq <= self.last_seq:
            self.counts.duplicates += 1
            return
        if seq != self.last_seq + 1:
            self.counts.gaps += 1
            self._drop_and_resubscribe()
            return
        if self.phase == "joining":  # the first event after subscribed: a replay
            if self._resume_since is not None:
                self.counts.resumes_replay += 1
            self._resume_since = None
            self._go_live()
        self._apply(message)
        self.last_seq = seq
        self.counts.events += 1
        self.shared.last_event_at = time.monotonic()

    def _apply(self, event: Json) -> None:
        kind = event["type"]
        data = event["data"]
        if not self.beds:  # hospital.<hpid>: every reservation event carries its whole state
            if data["status"] in ("pending", "approved"):
                self.reservations[data["id"]] = data
            else:
                self.reservations.pop(data["id"], None)
        elif kind == "beds.changed":
            record = self.bed_state.get(data["hpid"], _BLANK)
            self.bed_state[data["hpid"]] = self.shared.transitions.changed(record, event)
        elif kind == "beds.stale":
            for hpid in data["hpids"]:
                record = self.bed_state.get(hpid, _BLANK)
                self.bed_state[hpid] = BedRecord(
                    record.hvidate, bool(data["stale"]), record.held, record.beds
                )
        # acceptance.changed and announcements.changed are not part of the beds snapshot.

    def _drop_and_resubscribe(self) -> None:
        """A gap: forget the stream and subscribe again without ``since`` (protocol §4)."""
        self.bed_state, self.reservations, self.last_seq = {}, {}, None
        self._after_gap = True
        self.phase = "unsubscribing"
        self._send({"type": "unsubscribe", "streams": [self.stream]})

    def _on_unsubscribed(self, message: Json) -> None:
        if self.phase == "unsubscribing":
            self._subscribe()
        else:
            self.counts.anomalies["unsubscribed_out_of_turn"] += 1

    def _on_error(self, message: Json) -> None:
        code = str(message.get("code"))
        self.counts.errors[code] += 1
        if code == "unavailable" and message.get("stream") == self.stream:
            self.counts.unavailable += 1
            self.phase = "waiting"
            self._resubscribe_later()

    def _on_pong(self, message: Json) -> None:
        pass

    _HANDLERS: dict[str, Callable[["FollowingClient", Json], None]] = {
        "subscribed": _on_subscribed,
        "snapshot": _on_snapshot,
        "unsubscribed": _on_unsubscribed,
        "error": _on_error,
        "pong": _on_pong,
    }


def sum_counts(clients: Iterable[FollowingClient]) -> ClientCounts:
    total = ClientCounts()
    for client in clients:
        total.add(client.counts)
    return total
