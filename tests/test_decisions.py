"""The pure decisions behind applying upstream reports: property tests beside examples.

``status_update`` decides what a bed report does to a stored status; ``acceptance_diff`` and
``announcements_diff`` what the acceptance flags and ER message lists change. No database: the
services that wrap them are tested in test_ingestion_apply.py.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.bed_fields import STATUS_VALUE_KINDS, Kind
from domain.hospital_info_diff import StoredFlag, acceptance_diff, announcements_diff
from domain.reports import MessageReport
from domain.status_diff import StatusOutcome, status_update

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)

_values = st.fixed_dictionaries(
    {
        name: st.none() | (st.booleans() if kind is Kind.FLAG else st.integers(-20, 999))
        for name, kind in STATUS_VALUE_KINDS.items()
    }
)
_times = st.integers(-3, 3).map(lambda minutes: T0 + timedelta(minutes=minutes))
_stored = st.none() | st.tuples(st.none() | _times, _values)


@given(_stored, _times, _values)
def test_status_update_outcomes(
    stored: tuple[datetime | None, dict[str, object]] | None,
    reported_hvidate: datetime,
    reported: dict[str, object],
) -> None:
    """Older reports are ignored; otherwise the stored values patched with the changes are the
    report's; only a report with changes is news; an equal report is nothing at all."""
    stored_hvidate, stored_values = stored if stored is not None else (None, None)
    update = status_update(
        stored_hvidate=stored_hvidate,
        stored_values=stored_values,
        reported_hvidate=reported_hvidate,
        reported_values=reported,
    )
    if stored_hvidate is not None and reported_hvidate < stored_hvidate:
        assert update.outcome is StatusOutcome.OLDER
        return
    patched = {**(stored_values or {}), **{n: c["new"] for n, c in update.changes.items()}}
    assert {n: patched.get(n) for n in STATUS_VALUE_KINDS} == reported
    assert (update.outcome is StatusOutcome.CHANGED) == bool(update.changes)
    if not update.changes:
        expected = (
            StatusOutcome.SAME
            if stored_values is not None and stored_hvidate == reported_hvidate
            else StatusOutcome.FRESHER
        )
        assert update.outcome is expected


@given(_times, _values)
def test_status_update_is_idempotent(hvidate: datetime, values: dict[str, object]) -> None:
    """The same report applied to the state it produced changes nothing."""
    again = status_update(
        stored_hvidate=hvidate,
        stored_values=values,
        reported_hvidate=hvidate,
        reported_values=values,
    )
    assert (again.outcome, again.changes) == (StatusOutcome.SAME, {})


def test_a_first_report_that_knows_nothing_is_stored_but_not_news() -> None:
    """A hospital's first report with every value unknown creates its row and publishes
    nothing."""
    update = status_update(
        stored_hvidate=None,
        stored_values=None,
        reported_hvidate=T0,
        reported_values=dict.fromkeys(STATUS_VALUE_KINDS),
    )
    assert (update.outcome, update.changes) == (StatusOutcome.FRESHER, {})


_flags = st.none() | st.booleans()
_limits = st.sampled_from(["", "15세 이상", "성인"])
_categories = st.integers(1, 28)


@given(
    st.dictionaries(_categories, st.builds(StoredFlag, _flags, _limits)),
    st.dictionaries(_categories, _flags),
    st.dictionaries(_categories, _limits),
)
def test_acceptance_diff_stores_the_report_and_announces_flags_only(
    stored: dict[int, StoredFlag],
    accepts: dict[int, bool | None],
    age_limits: dict[int, str],
) -> None:
    """After the writes, every reported category is stored as reported; a change is announced
    exactly when a category is new or its flag moved (an age limit alone is not news)."""
    diff = acceptance_diff(stored=stored, accepts=accepts, age_limits=age_limits)
    after = {**stored, **diff.writes}
    for category, flag in accepts.items():
        assert after[category] == StoredFlag(flag, age_limits.get(category, ""))
    announced = {
        str(c): {"old": stored[c].accepts if c in stored else None, "new": flag}
        for c, flag in accepts.items()
        if c not in stored or stored[c].accepts is not flag
    }
    assert diff.changes == announced
    assert set(diff.writes) <= set(accepts)
    assert acceptance_diff(stored=after, accepts=accepts, age_limits=age_limits).writes == {}


def _message(hpid: str, fingerprint: str) -> MessageReport:
    return MessageReport(
        hpid=hpid,
        fingerprint=fingerprint,
        message_type="er",
        disease_code="",
        disease_name="",
        message=f"message {fingerprint}",
        display_flag="Y",
        display_method="",
        starts_at=None,
        ends_at=None,
    )


_hpids = st.sampled_from(["A1", "A2", "A3"])
_fingerprints = st.sampled_from([f"f{n}" for n in range(8)])


@given(
    st.dictionaries(_fingerprints, _hpids),
    st.lists(st.builds(_message, _hpids, _fingerprints)),
)
def test_announcements_diff_makes_the_active_set_match_the_list(
    active: dict[str, str], listed: list[MessageReport]
) -> None:
    """Active minus removed plus added is exactly the listed set; nothing is added twice or
    both added and removed; each change is filed under its own hospital."""
    changes = announcements_diff(active=active, listed=listed)
    added = [r.fingerprint for c in changes.values() for r in c.added]
    removed = [f for c in changes.values() for f in c.removed]
    assert len(added) == len(set(added))
    assert (set(active) - set(removed)) | set(added) == {r.fingerprint for r in listed}
    assert not set(added) & set(active)
    for hpid, change in changes.items():
        assert change.added or change.removed
        assert all(r.hpid == hpid for r in change.added)
        assert all(active[f] == hpid for f in change.removed)
    applied = {f: h for f, h in active.items() if f not in removed}
    applied |= {r.fingerprint: r.hpid for c in changes.values() for r in c.added}
    assert announcements_diff(active=applied, listed=listed) == {}


def test_announcements_diff_keeps_the_upstream_order() -> None:
    """New messages are added in the order the upstream lists them."""
    listed = [_message("A1", "f3"), _message("A1", "f1"), _message("A1", "f2")]
    changes = announcements_diff(active={"f1": "A1", "f9": "A1"}, listed=listed)
    assert [r.fingerprint for r in changes["A1"].added] == ["f3", "f2"]
    assert changes["A1"].removed == ["f9"]
