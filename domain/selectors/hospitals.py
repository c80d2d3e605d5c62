"""Reads of hospitals, their live ER status and the regions they belong to."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from domain.bed_fields import EQUIPMENT_NEEDS
from domain.errors import ErrorCode, NotFound, ValidationFailed
from domain.geo import bounding_box, distance_km
from domain.models import ERAnnouncement, ERStatus, Hospital, RegionFreshness
from domain.regions import REGIONS, REGIONS_BY_CODE, Region
from domain.selectors.reservations import held_counts


@dataclass(frozen=True, slots=True)
class RegionSummary:
    region: Region
    hospital_count: int


@dataclass(frozen=True, slots=True)
class HospitalHit:
    hospital: Hospital
    distance_km: float | None


def region_list() -> list[RegionSummary]:
    counts = dict(Hospital.objects.values_list("region_code").annotate(n=Count("id")).order_by())
    return [RegionSummary(region=r, hospital_count=counts.get(r.code, 0)) for r in REGIONS]


def _with_status() -> QuerySet[Hospital]:
    return Hospital.objects.select_related("er_status")


def hospital_search(
    *,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: float | None = None,
    region: str | None = None,
    min_er_beds: int | None = None,
    needs: Sequence[str] = (),
    q: str | None = None,
) -> list[HospitalHit]:
    """Hospitals matching every given filter, nearest first when a position is given (those
    without coordinates last), otherwise by region and name.

    ``needs`` names equipment that must be reported available; ``min_er_beds`` requires at
    least that many ER general beds (unknown counts do not match). Raises ``ValidationFailed``
    for unknown regions or needs, or a radius without a position.
    """
    problems = _search_problems(lat=lat, lon=lon, radius_km=radius_km, region=region, needs=needs)
    if problems:
        raise ValidationFailed("The search is invalid.", fields=problems)
    hospitals = _matching(region=region, q=q, min_er_beds=min_er_beds, needs=needs)
    if lat is None or lon is None:
        return [HospitalHit(h, None) for h in hospitals.order_by("region_code", "name")]
    return _nearest_first(hospitals, lat=lat, lon=lon, radius_km=radius_km)


def _search_problems(
    *,
    lat: float | None,
    lon: float | None,
    radius_km: float | None,
    region: str | None,
    needs: Sequence[str],
) -> dict[str, list[str]]:
    """The field errors of a search, by parameter name (empty when it is valid)."""
    problems: dict[str, list[str]] = {}
    if (lat is None) != (lon is None):
        problems["lat" if lat is None else "lon"] = ["lat and lon must be given together."]
    if radius_km is not None and lat is None:
        problems["radius_km"] = ["A radius needs lat and lon."]
    if region is not None and region not in REGIONS_BY_CODE:
        problems["region"] = [f"Unknown region {region!r}; see GET /api/regions."]
    unknown = [need for need in needs if need not in EQUIPMENT_NEEDS]
    if unknown:
        problems["needs"] = [f"Unknown: {', '.join(unknown)}. Known: {', '.join(EQUIPMENT_NEEDS)}."]
    return problems


def _matching(
    *, region: str | None, q: str | None, min_er_beds: int | None, needs: Sequence[str]
) -> QuerySet[Hospital]:
    """Hospitals (with their status) passing the filters that do not depend on a position."""
    hospitals = _with_status()
    if region is not None:
        hospitals = hospitals.filter(region_code=region)
    if q:
        hospitals = hospitals.filter(Q(name__icontains=q) | Q(address__icontains=q))
    if min_er_beds is not None:
        hospitals = hospitals.filter(er_status__er_general__gte=min_er_beds)
    for need in needs:
        hospitals = hospitals.filter(**{f"er_status__{need}": True})
    return hospitals


def _nearest_first(
    hospitals: QuerySet[Hospital], *, lat: float, lon: float, radius_km: float | None
) -> list[HospitalHit]:
    """``hospitals`` within ``radius_km`` (if given) of the position, nearest first; without a
    radius those without coordinates come last."""
    if radius_km is not None:
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius_km)
        hospitals = hospitals.filter(
            latitude__range=(min_lat, max_lat), longitude__range=(min_lon, max_lon)
        )
    hits = [
        HospitalHit(
            h,
            None
            if h.latitude is None or h.longitude is None
            else distance_km(lat, lon, h.latitude, h.longitude),
        )
        for h in hospitals
    ]
    if radius_km is not None:
        hits = [hit for hit in hits if hit.distance_km is not None and hit.distance_km <= radius_km]
    hits.sort(key=lambda hit: (hit.distance_km is None, hit.distance_km or 0.0, hit.hospital.hpid))
    return hits


def hospital_get(*, hpid: str) -> Hospital:
    """One hospital with its status, acceptance flags and currently active announcements."""
    now = timezone.now()
    active = ERAnnouncement.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    hospital = (
        _with_status()
        .prefetch_related("acceptances", Prefetch("announcements", queryset=active))
        .filter(hpid=hpid)
        .first()
    )
    if hospital is None:
        raise NotFound(f"No hospital {hpid!r}.", code=ErrorCode.HOSPITAL_NOT_FOUND)
    return hospital


def stale_region_codes() -> set[str]:
    """Regions whose polls have failed for too long: their data is the last good state."""
    return set(
        RegionFreshness.objects.filter(stale_since__isnull=False).values_list(
            "region_code", flat=True
        )
    )


def data_age_seconds(status: ERStatus, now: datetime) -> int | None:
    return int((now - status.hvidate).total_seconds()) if status.hvidate else None


def er_status_snapshot(*, region_code: str | None) -> list[dict[str, object]]:
    """Every hospital's current status in a region (all regions for None), for stream
    snapshots: ``hpid``, ``hvidate``, ``data_age_seconds``, ``ingested_at``, ``stale`` and
    ``beds`` holding only known values (an absent field is unknown, as the REST API's null)."""
    statuses = ERStatus.objects.select_related("hospital").order_by("hospital__hpid")
    if region_code is not None:
        statuses = statuses.filter(hospital__region_code=region_code)
    stale = stale_region_codes()
    held = held_counts()
    now = timezone.now()
    return [
        {
            "hpid": status.hospital.hpid,
            "hvidate": status.hvidate,
            "data_age_seconds": data_age_seconds(status, now),
            "ingested_at": status.ingested_at,
            "stale": status.hospital.region_code in stale,
            "held": held.get(status.hospital_id, 0),
            "beds": {name: value for name, value in status.values().items() if value is not None},
        }
        for status in statuses
    ]
