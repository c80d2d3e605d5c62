from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from domain.api.schemas import (
    ErrorOut,
    HospitalDetailOut,
    HospitalFilters,
    HospitalOut,
    HospitalPage,
    RegionOut,
    StatusContext,
    page_of,
)
from domain.selectors.hospitals import (
    hospital_get,
    hospital_search,
    region_list,
    stale_region_codes,
)
from domain.selectors.reservations import held_counts

router = Router(tags=["hospitals"])


@router.get("/regions", response=list[RegionOut])
def regions(request: HttpRequest) -> list[RegionOut]:
    """The 17 시도 with their codes and the ``beds.<code>`` stream names."""
    return [RegionOut.build(summary) for summary in region_list()]


@router.get("/hospitals", response={200: HospitalPage, 400: ErrorOut})
def hospitals(request: HttpRequest, filters: Query[HospitalFilters]) -> dict[str, Any]:
    """Hospitals with their current ER status, nearest first when ``lat``/``lon`` are given."""
    hits = hospital_search(
        lat=filters.lat,
        lon=filters.lon,
        radius_km=filters.radius_km,
        region=filters.region,
        min_er_beds=filters.min_er_beds,
        needs=filters.need_list(),
        q=filters.q,
    )
    context = _status_context()
    return page_of(hits, filters, lambda hit: HospitalOut.build(hit, context))


@router.get("/hospitals/{hpid}", response={200: HospitalDetailOut, 404: ErrorOut})
def hospital(request: HttpRequest, hpid: str) -> HospitalDetailOut:
    """One hospital: status, severe-illness acceptance and active ER announcements."""
    return HospitalDetailOut.build_detail(hospital_get(hpid=hpid), _status_context())


def _status_context() -> StatusContext:
    return StatusContext(stale_regions=stale_region_codes(), held=held_counts())
