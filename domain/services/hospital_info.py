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

from domain.models import EmergencyClass, ERAnnouncement, Hospital, SevereIllnessAcceptance
from domain.regions import region_for_sido
from domain.reports import AcceptanceReport, InstitutionReport, MessageReport
from realtime.publishing import Event, publish_on_commit
from realtime.streams import beds_streams


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
    to_update: list[SevereIllnessAcceptance] = []
    for report in reports:
        hospital = hospitals.get(report.hpid)
        if hospital is None:
            result.skipped += 1
            continue
        changes: dict[str, dict[str, object]] = {}
        for category, accepts in report.accepts.items():
            age_limit = report.age_limits.get(category, "")
            row = stored[hospital.pk].get(category)
            if row is None:
                to_create.append(
                    SevereIllnessAcceptance(
                        hospital=hospital, category=category, accepts=accepts, age_limit=age_limit
                    )
                )
                changes[str(category)] = {"old": None, "new": accepts}
            elif row.accepts is not accepts or row.age_limit != age_limit:
                if row.accepts is not accepts:
                    changes[str(category)] = {"old": row.accepts, "new": accepts}
                row.accepts, row.age_limit = accepts, age_limit
                to_update.append(row)
        if changes:
            result.changed += 1
            data = {"hpid": hospital.hpid, "changes": changes}
            events.extend(
                (s, "acceptance.changed", data) for s in beds_streams(hospital.region_code)
            )
        else:
            result.unchanged += 1
    SevereIllnessAcceptance.objects.bulk_create(to_create, batch_size=1000)
    SevereIllnessAcceptance.objects.bulk_update(to_update, ["accepts", "age_limit"], batch_size=500)
    publish_on_commit(events)
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
    added: dict[str, list[dict[str, object]]] = defaultdict(list)
    removed: dict[str, list[str]] = defaultdict(list)
    listed = set()
    for report in reports:
        hospital = hospitals.get(report.hpid)
        if hospital is None:
            result.skipped += 1
            continue
        listed.add(report.fingerprint)
        if report.fingerprint in active:
            continue
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
        added[report.hpid].append(_announcement(report))
    for fingerprint, announcement in active.items():
        if fingerprint not in listed:
            announcement.ends_at = max(now, announcement.starts_at or now)
            announcement.save(update_fields=["ends_at", "last_seen_at"])
            removed[announcement.hospital.hpid].append(fingerprint[:16])
    events: list[Event] = []
    for hpid in sorted(added.keys() | removed.keys()):
        data = {"hpid": hpid, "added": added.get(hpid, []), "removed": removed.get(hpid, [])}
        streams = beds_streams(hospitals[hpid].region_code)
        events.extend((stream, "announcements.changed", data) for stream in streams)
    result.changed = len(added.keys() | removed.keys())
    result.unchanged = len(hospitals) - result.changed
    publish_on_commit(events)
    return result
