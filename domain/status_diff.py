"""Pure comparison of a stored status with a new one, field by field."""

from collections.abc import Mapping
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
