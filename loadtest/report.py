"""Figures and progress shared by every part of the load tester; imports none of them.

Percentiles are by rank over values sorted ascending and rounded to 0.1 (ms); progress goes to
stderr, one line at a time, so that stdout carries nothing but the JSON report.
"""

import math
import statistics
import sys
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """The value at rank ``int(q * n)`` of ``ordered`` (sorted ascending; ``q`` from 0 to 1),
    the last one at most, rounded to 0.1; NaN when there are none."""
    if not ordered:
        return math.nan
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def distribution(ordered: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, max and mean of ``ordered`` (sorted ascending), NaN when empty."""
    return {
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": round(ordered[-1], 1) if ordered else math.nan,
        "mean": round(statistics.mean(ordered), 1) if ordered else math.nan,
    }


def progress(text: str) -> None:
    """One line of progress on stderr, flushed at once."""
    print(f"[weer-loadtest] {text}", file=sys.stderr, flush=True)
