"""Fault modes: which calls a fault hits, how control input becomes one, and what each mode does
to an answer.

A fault's filters (``operations``, ``regions``) match everything when ``None``; ``calls``, if
set, counts down with each call it hits, and the fault switches itself off at 0. The first active
fault that matches a call (in the order they were added) is the one that hits it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from domain.bed_fields import Kind
from ingestion.simulator.hospitals import FIELDS_BY_TAG
from ingestion.simulator.protocol import BEDS, OPERATIONS, Reply
from ingestion.simulator.rendering import render_gateway_error, render_result
from ingestion.simulator.validation import (
    ControlError,
    is_int,
    is_number,
    is_str_list,
    region_code,
)

FAULT_MODES: Final = (
    "timeout",
    "http500",
    "malformed",
    "code22",
    "code30",
    "truncated",
    "stale_hvidate",
    "bad_record",
)
# Modes that only make sense for some operations; a fault never matches (nor spends a call on)
# an operation outside this set.
_FAULT_OPERATIONS: Final[dict[str, frozenset[str]]] = {
    "stale_hvidate": frozenset({BEDS}),
}
BAD_RECORD_VARIANTS: Final = ("no_hpid", "bad_count")
DEFAULT_TIMEOUT_SECONDS: Final = 30.0

Row = dict[str, object]


@dataclass(slots=True)
class Fault:
    """A fault mode; ``None`` filters match everything; ``calls`` (if set) counts down to 0,
    when the fault switches itself off."""

    id: int
    mode: str
    operations: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    calls: int | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS
    missing: int | None = None
    variant: str | None = None
    hits: int = 0

    def matches(self, operation: str, region: str | None) -> bool:
        allowed = _FAULT_OPERATIONS.get(self.mode)
        if allowed is not None and operation not in allowed:
            return False
        if self.operations is not None and operation not in self.operations:
            return False
        return self.regions is None or region in self.regions

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "mode": self.mode,
            "operations": sorted(self.operations) if self.operations is not None else None,
            "regions": sorted(self.regions) if self.regions is not None else None,
            "calls": self.calls,
            "seconds": self.seconds,
            "missing": self.missing,
            "variant": self.variant,
            "hits": self.hits,
        }


def checked_fault(
    mode: str,
    operations: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    calls: int | None = None,
    seconds: float | None = None,
    missing: int | None = None,
    variant: str | None = None,
) -> Fault:
    """A fault from control input (its id 0 until ``ActiveFaults.add`` numbers it); ControlError
    on bad input, naming the first bad argument in the order above."""
    if mode not in FAULT_MODES:
        raise ControlError(f"mode must be one of {', '.join(FAULT_MODES)}")
    if operations is not None and (
        not is_str_list(operations) or not set(operations) <= set(OPERATIONS)
    ):
        raise ControlError(f"operations must be a list among {', '.join(OPERATIONS)}")
    if regions is not None and not is_str_list(regions):
        raise ControlError("regions must be a list of region codes or 시도 names")
    codes = frozenset(region_code(r) for r in regions) if regions is not None else None
    if calls is not None and (not is_int(calls) or calls < 1):
        raise ControlError("calls must be a positive integer")
    if seconds is not None and (not is_number(seconds) or seconds < 0):
        raise ControlError("seconds must be a number >= 0")
    if missing is not None and (not is_int(missing) or missing < 1):
        raise ControlError("missing must be a positive integer")
    if variant is not None and variant not in BAD_RECORD_VARIANTS:
        raise ControlError(f"variant must be one of {', '.join(BAD_RECORD_VARIANTS)}")
    return Fault(
        id=0,
        mode=mode,
        operations=frozenset(operations) if operations is not None else None,
        regions=codes,
        calls=calls,
        seconds=DEFAULT_TIMEOUT_SECONDS if seconds is None else float(seconds),
        missing=missing,
        variant=variant,
    )


class ActiveFaults:
    """The faults switched on, in the order they were added, numbered from 1. Not thread-safe:
    the ``Simulator``'s lock guards every call."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> Fault:
        """Switch ``fault`` on under the next id; answers it with that id."""
        numbered = replace(fault, id=self._next_id)
        self._next_id += 1
        self._faults.append(numbered)
        return numbered

    def take(self, operation: str, region: str | None) -> Fault | None:
        """A snapshot of the first active fault matching the call, taken after spending one of
        its calls (a fault whose calls run out is removed)."""
        for fault in self._faults:
            if fault.matches(operation, region):
                fault.hits += 1
                if fault.calls is not None:
                    fault.calls -= 1
                    if fault.calls <= 0:
                        self._faults.remove(fault)
                return replace(fault)
        return None

    def clear(self, fault_id: int | None = None) -> int:
        """Remove every fault, or the one with ``fault_id``; how many were removed."""
        before = len(self._faults)
        self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
        return before - len(self._faults)

    def as_json(self) -> list[dict[str, object]]:
        return [f.as_json() for f in self._faults]


def failure_reply(fault: Fault | None) -> Reply | None:
    """The answer of a fault that answers no data (``http500``, ``code22``, ``code30``); None
    for no fault and for the other modes."""
    mode = fault.mode if fault else None
    if mode == "http500":
        return Reply.text(500, "Internal Server Error", "http500")
    if mode == "code22":
        xml = render_result("22", "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR.")
        return Reply.xml(xml, "code22")
    if mode == "code30":
        return Reply.xml(render_gateway_error(), "code30")
    return None


def fault_rng(seed: int, fault: Fault | None) -> random.Random:
    """The generator that a fault which spoils data (``stale_hvidate``, ``bad_record``) draws
    from: its own per seed, mode and hit, never the walk's, so answers do not move the walk."""
    mode = fault.mode if fault else None
    return random.Random(f"{seed}:{mode}:{fault.hits if fault else 0}")  # noqa: S311 - simulation


def truncated(rows: list[Row], fault: Fault | None) -> list[Row]:
    """For a ``truncated`` fault, ``rows`` without the last ``missing`` (default a fifth, at
    least one); otherwise ``rows`` themselves."""
    if fault is None or fault.mode != "truncated":
        return rows
    total = len(rows)
    missing = fault.missing if fault.missing is not None else max(1, math.ceil(total / 5))
    return rows[: max(0, total - missing)]


def spoil_one(items: list[Row], fault: Fault | None, rng: random.Random) -> None:
    """For a ``bad_record`` fault, garble one of a page's ``items`` in place, with the fault's
    variant or, without one, ``no_hpid`` and ``bad_count`` by turns (odd hits ``bad_count``)."""
    if fault is None or fault.mode != "bad_record" or not items:
        return
    index = rng.randrange(len(items))
    variant = fault.variant or BAD_RECORD_VARIANTS[fault.hits % 2]
    items[index] = garbled(items[index], variant, rng)


def garbled(item: Row, variant: str, rng: random.Random) -> Row:
    """``item`` spoiled: without its hpid (``no_hpid``) or with a count that is not a number
    (``bad_count``; falls back to ``no_hpid`` when the item has no count)."""
    counts = sorted(
        tag for tag in item if tag in FIELDS_BY_TAG and FIELDS_BY_TAG[tag].kind is Kind.COUNT
    )
    spoiled = dict(item)
    if variant == "bad_count" and counts:
        spoiled["hvec" if "hvec" in counts else rng.choice(counts)] = "abc"
    else:
        for tag in ("hpid", "phpid", "emcOrgCod"):
            spoiled.pop(tag, None)
    return spoiled
