"""Applying the upstream's institution list, severe-illness acceptance and ER messages.

Acceptance and announcement changes reach clients like bed changes: on the hospital's region
stream and ``beds.all``, after commit, only what changed (``acceptance.changed``,
``announcements.changed``).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from domain.events import (
    Event,
    acceptance_changed,
    announcements_changed,
    events_publish_on_commit,
)
from domain.hospital_info_diff import StoredFlag, acceptance_diff, announcements_diff
from domain.models import EmergencyClass, ERAnnouncement, Hospital, SevereIllnessAcceptance
from domain.regions import region_for_sido
from domain.reports import AcceptanceReport, InstitutionReport, MessageReport


@dataclass
class InfoApplied:
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0  # reports for unknown hospitals or regions


@transaction.atomic
def institutions_apply(*, reports: Sequence[InstitutionReport]) -> InfoApplied:
    """Create or update hospitals from the institution list. The region comes from the
    address's first word (시도); a report whose region cannot be told is skipped."""
    result = InfoApplied()
    existing = {h.hpid: h for h in Hospital.objects.filter(hpid__in=[r.hpid for r in reports])}
    for report in reports:
        parts = report.address.split()
        region = region_for_sido(parts[0]) if parts else None
        hospital = existing.get(report.hpid)
        if region is None and hospital is None:
            result.skipped += 1
            continue
        fields = {
            "name": report.name[:200],
            "address": report.address[:300],
            "main_phone": report.main_phone[:20],
            "er_phone": report.er_phone[:20] or (hospital.er_phone if hospital else ""),
            "latitude": report.latitude,
            "longitude": report.longitude,
            "emergency_class": report.emergency_class
            if report.emergency_class in EmergencyClass.values
            else "",
        }
        if region is not None:
            fields |= {"region_code": region.code, "sido": parts[0], "sigungu": _sigungu(parts)}
        if hospital is None:
            Hospital.objects.create(hpid=report.hpid, **fields)
            result.changed += 1
        elif any(getattr(hospital, name) != value for name, value in fields.items()):
            Hospital.objects.filter(pk=hospital.pk).update(**fields, updated_at=timezone.now())
            result.changed += 1
        else:
            result.unchanged += 1
    return result


def _sigungu(address_parts: list[str]) -> str:
    return (
        address_parts[1][:30] if len(address_parts) > 1 and address_parts[1][-1] in "시군구" else ""
    )


@transaction.atomic
def acceptance_apply(*, reports: Sequence[AcceptanceReport]) -> InfoApplied:
    """Store severe-illness acceptance flags; publish ``acceptance.changed`` per hospital
    whose flags changed, with old and new per category."""
    result = InfoApplied()
    hospitals = {h.hpid: h for h in Hospital.objects.filter(hpid__in=[r.hpid for r in reports])}
    stored: dict[int, dict[int, SevereIllnessAcceptance]] = defaultdict(dict)
    for flag in SevereIllnessAcceptance.objects.select_for_update().filter(
        hospital__in=hospitals.values()
    ):
        stored[flag.hospital_id][flag.category] = flag
    events: list[Event] = []
    to_create: list[SevereIllnessAcceptance] = []
    to_update: dict[int, SevereIllnessAcceptance] = {}  # by pk
    for report in reports:
        hospital = hospitals.get(report.hpid)
        if hospital is None:
            result.skipped += 1
            continue
        rows = stored[hospital.pk]
        diff = acceptance_diff(
            stored={c: StoredFlag(row.accepts, row.age_limit) for c, row in rows.items()},
            accepts=report.accepts,
            age_limits=report.age_limits,
        )
        for category, write in diff.writes.items():
            row = rows.get(category)
            if row is None:
                row = rows[category] = SevereIllnessAcceptance(hospital=hospital, category=category)
                to_create.append(row)
            elif row.pk is not None:
                to_update[row.pk] = row
            row.accepts, row.age_limit = write.accepts, write.age_limit
        if diff.changes:
            result.changed += 1
            events += acceptance_changed(
                hpid=hospital.hpid, region_code=hospital.region_code, changes=diff.changes
            )
        else:
            result.unchanged += 1
    SevereIllnessAcceptance.objects.bulk_create(to_create, batch_size=1000)
    SevereIllnessAcceptance.objects.bulk_update(
        to_update.values(), ["accepts", "age_limit"], batch_size=500
    )
    events_publish_on_commit(events)
    return result


def _announcement(report: MessageReport) -> dict[str, object]:
    return {
        "id": report.fingerprint[:16],
        "message_type": report.message_type,
        "disease_code": report.disease_code,
        "disease_name": report.disease_name,
        "message": report.message,
        "starts_at": report.starts_at,
        "ends_at": report.ends_at,
    }


@transaction.atomic
def announcements_apply(*, region_code: str, reports: Sequence[MessageReport]) -> InfoApplied:
    """Make a region's current ER messages match the upstream's list: new ones are stored,
    ones no longer listed are ended now. Publishes ``announcements.changed`` per hospital with
    the ``added`` announcements and the ids of the ``removed`` ones."""
    result = InfoApplied()
    now = timezone.now()
    hospitals = {h.hpid: h for h in Hospital.objects.filter(region_code=region_code)}
    active = {
        a.fingerprint: a
        for a in ERAnnouncement.objects.select_for_update()
        .filter(hospital__region_code=region_code)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("hospital")
    }
    known = [report for report in reports if report.hpid in hospitals]
    result.skipped = len(reports) - len(known)
    changes = announcements_diff(
        active={fingerprint: a.hospital.hpid for fingerprint, a in active.items()}, listed=known
    )
    events: list[Event] = []
    for hpid in sorted(changes):
        hospital = hospitals[hpid]
        for report in changes[hpid].added:
            ERAnnouncement.objects.update_or_create(
                fingerprint=report.fingerprint,
                defaults={
                    "hospital": hospital,
                    "message_type": report.message_type,
                    "disease_code": report.disease_code,
                    "disease_name": report.disease_name,
                    "message": report.message,
                    "display_flag": report.display_flag,
                    "display_method": report.display_method,
                    "starts_at": report.starts_at,
                    "ends_at": report.ends_at,
                },
            )
        for fingerprint in changes[hpid].removed:
            announcement = active[fingerprint]
            announcement.ends_at = max(now, announcement.starts_at or now)
            announcement.save(update_fields=["ends_at", "last_seen_at"])
        events += announcements_changed(
            hpid=hpid,
            region_code=hospital.region_code,
            added=[_announcement(report) for report in changes[hpid].added],
            removed=[fingerprint[:16] for fingerprint in changes[hpid].removed],
        )
    result.changed = len(changes)
    result.unchanged = len(hospitals) - result.changed
    events_publish_on_commit(events)
    return result
