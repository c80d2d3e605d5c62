"""Pure comparison of a stored status with a new one: field by field, and what a report means
for the stored row (``status_update``). No I/O: ``domain.services.er_status`` wraps it."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from domain.bed_fields import STATUS_VALUE_KINDS


class Change(TypedDict):
    old: object
    new: object


def _same(a: object, b: object) -> bool:
    # True == 1 in Python, but for a mixed field "Y" and a count of 1 are different news.
    return type(a) is type(b) and a == b


def diff_values(stored: Mapping[str, object], incoming: Mapping[str, object]) -> dict[str, Change]:
    """Every status field whose value differs, with its old and new value. A field missing
    from either side counts as None (unknown), so a field the upstream stops reporting becomes
    unknown rather than keeping a stale number."""
    changes: dict[str, Change] = {}
    for name in STATUS_VALUE_KINDS:
        old, new = stored.get(name), incoming.get(name)
        if not _same(old, new):
            changes[name] = {"old": old, "new": new}
    return changes


class StatusOutcome(StrEnum):
    """What a bed report means for the stored status."""

    OLDER = "older"  # older than what is stored: ignored
    SAME = "same"  # nothing new: nothing is written
    FRESHER = "fresher"  # only the upstream's input time moved: written, nothing to tell
    CHANGED = "changed"  # values changed: written, and published


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    outcome: StatusOutcome
    changes: dict[str, Change]  # empty unless CHANGED


def status_update(
    *,
    stored_hvidate: datetime | None,
    stored_values: Mapping[str, object] | None,
    reported_hvidate: datetime,
    reported_values: Mapping[str, object],
) -> StatusUpdate:
    """Decide what a report does to a hospital's stored status (None: it has none yet).

    An older ``hvidate`` never overwrites a newer one; a report equal to what is stored
    changes nothing (so applying the same report twice is idempotent); a first report is
    FRESHER when it knows no value and CHANGED otherwise."""
    if stored_hvidate is not None and reported_hvidate < stored_hvidate:
        return StatusUpdate(StatusOutcome.OLDER, {})
    changes = diff_values(stored_values or {}, reported_values)
    if changes:
        return StatusUpdate(StatusOutcome.CHANGED, changes)
    if stored_values is not None and reported_hvidate == stored_hvidate:
        return StatusUpdate(StatusOutcome.SAME, {})
    return StatusUpdate(StatusOutcome.FRESHER, {})
