import math

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
)
from domain.selectors.hospitals import (
    hospital_get,
    hospital_search,
    region_list,
)

router = Router(tags=["hospitals"])


@router.get("/regions", response=list[RegionOut])
def regions(request: HttpRequest) -> list[RegionOut]:
    """The 17 시도 with their codes and the ``beds.<code>`` stream names."""
    return [RegionOut.build(summary) for summary in region_list()]


@router.get("/hospitals", response={200: HospitalPage, 400: ErrorOut})
def hospitals(request: HttpRequest, filters: Query[HospitalFilters]) -> HospitalPage:
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
    start = (filters.page - 1) * filters.page_size
    context = StatusContext.now()
    return HospitalPage(
        count=len(hits),
        page=filters.page,
        page_size=filters.page_size,
        pages=math.ceil(len(hits) / filters.page_size),
        results=[
            HospitalOut.build(hit, context) for hit in hits[start : start + filters.page_size]
        ],
    )


@router.get("/hospitals/{hpid}", response={200: HospitalDetailOut, 404: ErrorOut})
def hospital(request: HttpRequest, hpid: str) -> HospitalDetailOut:
    """One hospital: status, severe-illness acceptance and active ER announcements."""
    return HospitalDetailOut.build_detail(hospital_get(hpid=hpid))
