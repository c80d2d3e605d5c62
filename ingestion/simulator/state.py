"""``Simulator``: the simulated upstream's state (hospitals, faults, statistics and the random
walk) behind one lock, and its answers to API and control calls, without any HTTP."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from domain.demo_data import demo_hospitals
from ingestion.simulator.control import answer_control
from ingestion.simulator.faults import (
    ActiveFaults,
    Fault,
    checked_fault,
    failure_reply,
    fault_rng,
    spoil_one,
    truncated,
)
from ingestion.simulator.generation import generate_hospital, perturb
from ingestion.simulator.hospitals import VALUE_TAGS, Hospital
from ingestion.simulator.protocol import KST, OPERATIONS, Reply, parse_date
from ingestion.simulator.queries import BadRequest, Query, parse_query, selected
from ingestion.simulator.records import operation_rows, page_items
from ingestion.simulator.rendering import (
    cut_in_element,
    render_gateway_error,
    render_page,
    render_result,
)
from ingestion.simulator.validation import (
    ControlError,
    check_walk,
    checked_acceptance,
    checked_message,
    checked_values,
    region_code,
)

DEFAULT_SERVICE_KEY: Final = "simulator-key"
DEFAULT_SEED: Final = 2026


@dataclass(slots=True)
class _Stats:
    by_operation: dict[str, Counter[str]] = field(default_factory=dict)

    def record(self, operation: str, outcome: str) -> None:
        self.by_operation.setdefault(operation, Counter())[outcome] += 1

    def as_json(self) -> dict[str, object]:
        outcomes: Counter[str] = Counter()
        for counter in self.by_operation.values():
            outcomes.update(counter)
        return {
            "calls": sum(outcomes.values()),
            "operations": {
                op: {"calls": sum(c.values()), "outcomes": dict(sorted(c.items()))}
                for op, c in sorted(self.by_operation.items())
            },
            "outcomes": dict(sorted(outcomes.items())),
        }


def _now() -> datetime:
    return datetime.now(KST)


class Simulator:
    """The simulated upstream: state, faults, statistics and the random walk.

    Contracts:

    * Initial values depend only on ``seed`` and the hospitals (each hospital draws from
      ``random.Random(f"{seed}:{hpid}")``); initial hvidates are 0–30 minutes before creation.
    * Every read and write of the state holds ``self._lock``; rendering happens outside it.
    * ``start()`` starts the background walk thread (a step every ``walk_interval`` seconds,
      none while it is 0); ``close()`` stops it and ends any ``timeout`` fault's sleep early.
    * A walk step changes ``round(len(hospitals) * change_fraction)`` hospitals (at least one if
      the fraction is above 0): 1–3 of each one's reported values (a count moves by ±1..2, a flag
      flips between Y and N1) and sets its hvidate to now.
    * ``hospitals`` (default: ``demo_hospitals()``, whatever the seed) are dicts with the keys of
      ``domain.demo_data.HOSPITAL_KEYS``; ``clock`` gives the current time (aware).
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        walk_interval: float = 5.0,
        change_fraction: float = 0.1,
        *,
        service_key: str = DEFAULT_SERVICE_KEY,
        hospitals: Sequence[Mapping[str, object]] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        check_walk(walk_interval, change_fraction)
        self.seed = seed
        self.service_key = service_key
        self._clock = clock
        self._lock = threading.Lock()
        self._walk_rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._walk_interval = float(walk_interval)
        self._change_fraction = float(change_fraction)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._walker: threading.Thread | None = None
        self._faults = ActiveFaults()
        self._stats = _Stats()
        created = clock()
        source = demo_hospitals() if hospitals is None else hospitals
        self._hospitals: dict[str, Hospital] = {}
        for info in source:
            hospital = generate_hospital(dict(info), seed, created)
            self._hospitals[hospital.hpid] = hospital

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background walk thread (idempotent)."""
        if self._walker is None:
            self._walker = threading.Thread(target=self._walk_loop, name="sim-walk", daemon=True)
            self._walker.start()

    def close(self) -> None:
        """Stop the walk thread and cut short any sleeping ``timeout`` fault."""
        self._closed.set()
        self._wake.set()
        if self._walker is not None:
            self._walker.join(timeout=5)

    def _walk_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                interval = self._walk_interval
            woken = self._wake.wait(interval if interval > 0 else None)
            if self._closed.is_set():
                return
            if woken:
                self._wake.clear()  # settings changed: start a new interval
                continue
            self.walk_step()

    # ---- the walk ------------------------------------------------------------------------

    def set_walk(self, interval: float | None = None, fraction: float | None = None) -> None:
        """Change the walk's interval (0 stops it) and/or the fraction of hospitals it changes."""
        with self._lock:
            new_interval = self._walk_interval if interval is None else float(interval)
            new_fraction = self._change_fraction if fraction is None else float(fraction)
            check_walk(new_interval, new_fraction)
            self._walk_interval, self._change_fraction = new_interval, new_fraction
        self._wake.set()

    def walk_settings(self) -> dict[str, float]:
        with self._lock:
            return {"interval": self._walk_interval, "fraction": self._change_fraction}

    def walk_step(self) -> list[str]:
        """One step of the random walk now; the hpids it changed, in no particular order."""
        now = self._clock()
        changed: list[str] = []
        with self._lock:
            hospitals = list(self._hospitals.values())
            fraction = self._change_fraction
            count = round(len(hospitals) * fraction)
            if fraction > 0:
                count = min(len(hospitals), max(count, 1))
            for hospital in self._walk_rng.sample(hospitals, count):
                if perturb(hospital.values, self._walk_rng, attempts=3):
                    hospital.hvidate = now
                    changed.append(hospital.hpid)
        return changed

    # ---- hospitals -----------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        """The control API's health answer: hospital and fault counts, seed, walk settings."""
        with self._lock:
            count, faults = len(self._hospitals), len(self._faults)
        return {
            "status": "ok",
            "hospitals": count,
            "faults": faults,
            "seed": self.seed,
            "walk": self.walk_settings(),
        }

    def hospital(self, hpid: str) -> dict[str, object]:
        """The hospital's current state as JSON; KeyError if unknown."""
        with self._lock:
            return self._hospitals[hpid].as_json()

    def hospital_list(self, region: str | None = None) -> list[dict[str, object]]:
        """Every hospital (of ``region``, a code or 시도 name, if given): hpid, name, region."""
        code = region_code(region) if region else None
        with self._lock:
            return [
                {"hpid": h.hpid, "name": h.info["name"], "region_code": h.region_code}
                for h in self._hospitals.values()
                if code is None or h.region_code == code
            ]

    def update_hospital(
        self,
        hpid: str,
        values: Mapping[str, object] | None = None,
        remove: Sequence[str] = (),
        hvidate: str | None = None,
        acceptance: Mapping[str, object] | None = None,
        messages: Sequence[Mapping[str, object]] | None = None,
    ) -> dict[str, object]:
        """Set exact upstream values (ints for counts, strings verbatim), remove tags, set the
        hvidate (default now), the acceptance tags and/or the messages; all or nothing.
        ControlError (400) on bad input, (404) for an unknown hpid."""
        new_values = checked_values(values or {})
        for tag in remove:
            if not isinstance(tag, str) or tag not in VALUE_TAGS:
                raise ControlError(f"remove: unknown tag {tag!r}")
        try:
            moment = parse_date(hvidate) if hvidate is not None else self._clock()
        except (TypeError, ValueError) as exc:
            raise ControlError(f"hvidate: {exc}") from None
        new_acceptance = checked_acceptance(acceptance or {})
        new_messages = (
            [checked_message(m, self._clock()) for m in messages] if messages is not None else None
        )
        with self._lock:
            hospital = self._hospitals.get(hpid)
            if hospital is None:
                raise ControlError(f"unknown hpid {hpid!r}", status=404)
            hospital.values.update(new_values)
            for tag in remove:
                hospital.values.pop(tag, None)
            hospital.hvidate = moment
            for tag, text in new_acceptance.items():
                if text is None:
                    hospital.acceptance.pop(tag, None)
                else:
                    hospital.acceptance[tag] = text
            if new_messages is not None:
                hospital.messages = new_messages
            return hospital.as_json()

    # ---- faults and stats ----------------------------------------------------------------

    def add_fault(
        self,
        mode: str,
        operations: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        calls: int | None = None,
        seconds: float | None = None,
        missing: int | None = None,
        variant: str | None = None,
    ) -> dict[str, object]:
        """Switch a fault mode on; ControlError on bad input. Answers the fault as JSON."""
        fault = checked_fault(mode, operations, regions, calls, seconds, missing, variant)
        with self._lock:
            return self._faults.add(fault).as_json()

    def faults(self) -> list[dict[str, object]]:
        with self._lock:
            return self._faults.as_json()

    def clear_faults(self, fault_id: int | None = None) -> int:
        """Remove every fault, or the one with ``fault_id``; how many were removed."""
        with self._lock:
            return self._faults.clear(fault_id)

    def stats(self) -> dict[str, object]:
        with self._lock:
            return self._stats.as_json()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    # ---- the API and the control API -----------------------------------------------------

    def respond(self, operation: str, params: Mapping[str, str]) -> Reply:
        """Answer one API call of ``operation`` with the (decoded) query ``params``, as the
        upstream would, faults included. May sleep (``timeout`` fault); never holds the lock
        while sleeping or rendering."""
        reply = self._respond(operation, params)
        with self._lock:
            self._stats.record(operation, reply.outcome)
        return reply

    def control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        """Answer one control call (``path`` below ``/_control/``) with JSON; see
        ``ingestion.simulator.control``."""
        return answer_control(self, method, path, query, body)

    def _respond(self, operation: str, params: Mapping[str, str]) -> Reply:
        key = params.get("serviceKey") or params.get("ServiceKey")
        if not key:
            return Reply.text(401, "Unauthorized", "unauthorized")
        if key != self.service_key:
            return Reply.xml(render_gateway_error(), "key_not_registered")
        if operation not in OPERATIONS:
            return Reply.xml(render_gateway_error(12, "NO_OPENAPI_SERVICE_ERROR"), "no_service")
        try:
            query = parse_query(operation, params)
        except BadRequest as exc:
            return Reply.xml(render_result(exc.code, str(exc)), "bad_request")
        region = self._region_of(query)
        with self._lock:
            fault = self._faults.take(operation, region)
        if fault is not None and fault.mode == "timeout":
            self._closed.wait(fault.seconds)
        failed = failure_reply(fault)
        if failed is not None:
            return failed
        xml = self._render(query, fault)
        if fault is not None and fault.mode == "malformed":
            xml = cut_in_element(xml)
        return Reply.xml(xml, fault.mode if fault else "ok")

    def _region_of(self, query: Query) -> str | None:
        if query.hpid is not None:
            with self._lock:
                hospital = self._hospitals.get(query.hpid)
            return hospital.region_code if hospital else None
        return query.region.code if query.region else None

    def _render(self, query: Query, fault: Fault | None) -> str:
        rng = fault_rng(self.seed, fault)
        stale = fault is not None and fault.mode == "stale_hvidate"
        with self._lock:
            hospitals = selected(self._hospitals, query)
            rows = operation_rows(query.operation, hospitals, rng if stale else None)
        total = len(rows)
        items = page_items(
            truncated(rows, fault), query.operation, query.page_no, query.num_of_rows
        )
        spoil_one(items, fault, rng)
        return render_page(
            items, page_no=query.page_no, num_of_rows=query.num_of_rows, total_count=total
        )
