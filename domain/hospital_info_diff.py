"""Pure decisions of what the upstream's severe-illness acceptance flags and ER message lists
change. No I/O: ``domain.services.hospital_info`` reads the stored state, calls these, and
writes and publishes what they return."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.reports import MessageReport
from domain.status_diff import Change


@dataclass(frozen=True, slots=True)
class StoredFlag:
    accepts: bool | None
    age_limit: str


@dataclass(frozen=True, slots=True)
class AcceptanceDiff:
    changes: dict[str, Change]  # category (as text) → its old and new flag: what clients hear
    writes: dict[int, StoredFlag]  # category → what to store (new rows or changed ones)


def acceptance_diff(
    *,
    stored: Mapping[int, StoredFlag],
    accepts: Mapping[int, bool | None],
    age_limits: Mapping[int, str],
) -> AcceptanceDiff:
    """Compare one hospital's stored flags with a report. A category not stored yet is new
    (old: None). A changed age limit alone is stored but not announced: clients are told of
    flags only."""
    changes: dict[str, Change] = {}
    writes: dict[int, StoredFlag] = {}
    for category, flag in accepts.items():
        reported = StoredFlag(flag, age_limits.get(category, ""))
        row = stored.get(category)
        if row is not None and row.accepts is flag and row.age_limit == reported.age_limit:
            continue
        writes[category] = reported
        if row is None or row.accepts is not flag:
            changes[str(category)] = {"old": row.accepts if row else None, "new": flag}
    return AcceptanceDiff(changes, writes)


@dataclass(slots=True)
class AnnouncementChanges:
    added: list[MessageReport] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # fingerprints


def announcements_diff(
    *, active: Mapping[str, str], listed: Sequence[MessageReport]
) -> dict[str, AnnouncementChanges]:
    """Per hospital (hpid), what makes its current messages (``active``: fingerprint → hpid)
    match the upstream's list (``listed``, of known hospitals only): the reports not active
    yet, in the upstream's order, and the fingerprints no longer listed."""
    by_hpid: dict[str, AnnouncementChanges] = {}
    seen: set[str] = set()
    for report in listed:
        if report.fingerprint in active or report.fingerprint in seen:
            continue
        seen.add(report.fingerprint)
        by_hpid.setdefault(report.hpid, AnnouncementChanges()).added.append(report)
    listed_fingerprints = {report.fingerprint for report in listed}
    for fingerprint, hpid in active.items():
        if fingerprint not in listed_fingerprints:
            by_hpid.setdefault(hpid, AnnouncementChanges()).removed.append(fingerprint)
    return by_hpid
