"""Applying the upstream's bed reports, and keeping track of how fresh each region is.

Every change reaches clients as a ``beds.changed`` event on the hospital's region stream and on
``beds.all``, published after the transaction commits and carrying only the changed fields.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from domain.events import Event, beds_changed, beds_stale, events_publish_on_commit
from domain.models import ERStatus, Hospital, RegionFreshness
from domain.regions import REGIONS_BY_CODE
from domain.reports import BedReport
from domain.status_diff import StatusOutcome, status_update


@dataclass
class BedsApplied:
    changed: list[str] = field(default_factory=list)  # hpids whose values changed
    unchanged: int = 0
    older_skipped: int = 0  # reports older than what is stored
    hospitals_created: int = 0
    lags: list[float] = field(default_factory=list)  # seconds from hvidate to publish, changed


def _latest_per_hospital(reports: Sequence[BedReport]) -> dict[str, BedReport]:
    latest: dict[str, BedReport] = {}
    for report in reports:
        if report.hpid not in latest or report.hvidate > latest[report.hpid].hvidate:
            latest[report.hpid] = report
    return latest


@transaction.atomic
def er_status_apply(*, region_code: str, reports: Sequence[BedReport]) -> BedsApplied:
    """Store a region's reports and publish what changed. Idempotent: the same reports again
    change and publish nothing. A report older (``hvidate``) than the stored status is ignored.
    A report for a hospital we do not know yet creates it (the institution sync fills it in).
    """
    region = REGIONS_BY_CODE[region_code]
    now = timezone.now()
    result = BedsApplied()
    latest = _latest_per_hospital(reports)
    hospitals = {h.hpid: h for h in Hospital.objects.filter(hpid__in=latest)}
    for hpid in latest.keys() - hospitals.keys():
        report = latest[hpid]
        hospitals[hpid] = Hospital.objects.create(
            hpid=hpid,
            name=report.name or hpid,
            sido=region.name,
            region_code=region_code,
            er_phone=report.er_phone[:20],
        )
        result.hospitals_created += 1
    statuses = {
        status.hospital_id: status
        for status in ERStatus.objects.select_for_update().filter(
            hospital_id__in=[h.pk for h in hospitals.values()]
        )
    }
    new_statuses: list[ERStatus] = []
    updates: list[tuple[int, dict[str, object]]] = []  # pk → only the columns that changed
    events: list[Event] = []
    for hpid, report in latest.items():
        hospital = hospitals[hpid]
        status = statuses.get(hospital.pk)
        update = status_update(
            stored_hvidate=status.hvidate if status else None,
            stored_values=status.values() if status else None,
            reported_hvidate=report.hvidate,
            reported_values=report.values,
        )
        if update.outcome is StatusOutcome.OLDER:
            result.older_skipped += 1
            continue
        if update.outcome is StatusOutcome.SAME:
            result.unchanged += 1
            continue
        if status is None:
            new_statuses.append(
                ERStatus(
                    hospital=hospital, hvidate=report.hvidate, ingested_at=now, **report.values
                )
            )
        else:
            columns = {name: change["new"] for name, change in update.changes.items()}
            updates.append((status.pk, columns | {"hvidate": report.hvidate, "ingested_at": now}))
        if update.outcome is StatusOutcome.FRESHER:
            result.unchanged += 1
            continue
        result.changed.append(hpid)
        result.lags.append((now - report.hvidate).total_seconds())
        events += beds_changed(
            hpid=hpid,
            region_code=hospital.region_code,
            changes=update.changes,
            hvidate=report.hvidate,
        )
    ERStatus.objects.bulk_create(new_statuses, batch_size=500)
    for pk, columns in updates:  # small single-row UPDATEs beat bulk_update's CASE per column
        ERStatus.objects.filter(pk=pk).update(**columns)
    events_publish_on_commit(events)
    return result


def _stale_event(region_code: str, *, stale: bool, since: datetime | None) -> list[Event]:
    hpids = list(
        Hospital.objects.filter(region_code=region_code, er_status__isnull=False)
        .order_by("hpid")
        .values_list("hpid", flat=True)
    )
    return beds_stale(region_code=region_code, stale=stale, since=since, hpids=hpids)


@transaction.atomic
def region_poll_succeeded(*, region_code: str) -> None:
    """A poll of the region worked: record it and clear staleness (``beds.stale``, false)."""
    now = timezone.now()
    freshness, _ = RegionFreshness.objects.select_for_update().get_or_create(
        region_code=region_code
    )
    was_stale = freshness.stale_since is not None
    freshness.last_attempt_at = freshness.last_success_at = now
    freshness.consecutive_failures = 0
    freshness.last_error = ""
    freshness.stale_since = None
    freshness.save()
    if was_stale:
        events_publish_on_commit(_stale_event(region_code, stale=False, since=None))


@transaction.atomic
def region_poll_failed(*, region_code: str, error: str) -> bool:
    """A poll of the region failed or could not run. Its last good state stays; once no poll
    has succeeded for ``INGEST_STALE_AFTER_SECONDS`` the region is marked stale and clients get
    ``beds.stale`` (true). Returns whether the region is stale now."""
    now = timezone.now()
    freshness, _ = RegionFreshness.objects.select_for_update().get_or_create(
        region_code=region_code, defaults={"last_success_at": now}
    )
    freshness.last_attempt_at = now
    freshness.consecutive_failures += 1
    freshness.last_error = error[:200]
    limit = timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS)
    overdue = freshness.last_success_at is None or now - freshness.last_success_at > limit
    if overdue and freshness.stale_since is None:
        freshness.stale_since = now
        events_publish_on_commit(_stale_event(region_code, stale=True, since=now))
    freshness.save()
    return freshness.stale_since is not None
