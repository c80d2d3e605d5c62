"""The public hospital search and detail endpoints, and the region list."""

from datetime import timedelta
from typing import get_args

import pytest
from django.test import Client
from django.utils import timezone

from domain.api.schemas import RegionCode
from domain.errors import ErrorCode
from domain.models import AnnouncementType, ERAnnouncement, Hospital, SevereIllnessAcceptance
from domain.regions import REGIONS_BY_CODE
from tests.factories import ERStatusFactory, HospitalFactory

pytestmark = pytest.mark.django_db

CITY_HALL = "lat=37.5665&lon=126.9780"


@pytest.fixture
def seoul_hospitals() -> dict[str, Hospital]:
    """Three Seoul hospitals at known distances from City Hall, one Busan hospital."""
    near = ERStatusFactory(
        hospital=HospitalFactory(
            hpid="A0000191", name="서울적십자병원", latitude=37.567403, longitude=126.967050
        ),  # ~1 km
        er_general=-3,
        er_general_capacity=12,
        ct=True,
        mri=False,
        hvidate=timezone.now() - timedelta(minutes=5),
    ).hospital
    middle = ERStatusFactory(
        hospital=HospitalFactory(
            hpid="A0000005", name="서울대학교병원", latitude=37.579763, longitude=126.998980
        ),  # ~2.3 km
        er_general=7,
        ct=True,
        mri=True,
        angio=True,
        ventilator=True,
    ).hospital
    far = HospitalFactory(
        hpid="A1100015", name="강남세브란스병원", latitude=37.4929, longitude=127.0463
    )  # ~10 km, no status yet
    busan = ERStatusFactory(
        hospital=HospitalFactory(
            hpid="A2600001",
            name="부산대학교병원",
            region_code="26",
            sido="부산광역시",
            latitude=35.1006,
            longitude=129.0191,
        ),
        er_general=10,
        ct=True,
        mri=True,
    ).hospital
    return {"near": near, "middle": middle, "far": far, "busan": busan}


def test_nearest_first_with_status(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """Hospitals come nearest first with distance, status, and the age of their data."""
    response = api.get(f"/api/hospitals?{CITY_HALL}")
    assert response.status_code == 200
    body = response.json()
    assert [h["hpid"] for h in body["results"]] == ["A0000191", "A0000005", "A1100015", "A2600001"]
    distances = [h["distance_km"] for h in body["results"]]
    assert distances == sorted(distances)
    assert 0.8 < distances[0] < 1.2
    assert 300 < distances[-1] < 350
    first = body["results"][0]
    assert first["status"]["beds"]["er_general"] == -3
    assert first["status"]["beds"]["er_general_capacity"] == 12
    assert first["status"]["beds"]["mri"] is False
    assert first["status"]["beds"]["hyperbaric_oxygen"] is None
    assert 290 <= first["status"]["data_age_seconds"] <= 330
    assert body["results"][2]["status"] is None
    assert body["count"] == 4


def test_filters(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """radius, region, min_er_beds, needs and q each narrow the result."""

    def hpids(query: str) -> list[str]:
        response = api.get(f"/api/hospitals?{query}")
        assert response.status_code == 200, response.content
        return [h["hpid"] for h in response.json()["results"]]

    assert hpids(f"{CITY_HALL}&radius_km=5") == ["A0000191", "A0000005"]
    assert hpids(f"{CITY_HALL}&region=26") == ["A2600001"]
    assert hpids(f"{CITY_HALL}&min_er_beds=5") == ["A0000005", "A2600001"]
    assert hpids(f"{CITY_HALL}&needs=ct,mri") == ["A0000005", "A2600001"]
    assert hpids(f"{CITY_HALL}&needs=ct,mri,angio,ventilator") == ["A0000005"]
    assert hpids("q=서울대") == ["A0000005"]
    assert hpids(f"{CITY_HALL}&needs=CT, MRI") == ["A0000005", "A2600001"]
    assert hpids("region=11") == ["A1100015", "A0000005", "A0000191"]  # by name without a position


def test_blank_parameters_mean_no_filter(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """Empty parameters, as an HTML form sends them, are ignored rather than refused."""
    response = api.get(f"/api/hospitals?{CITY_HALL}&radius_km=&region=&min_er_beds=&needs=&q=")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 4


def test_paging(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """Pages partition the sorted result."""
    first = api.get(f"/api/hospitals?{CITY_HALL}&page_size=3").json()
    second = api.get(f"/api/hospitals?{CITY_HALL}&page_size=3&page=2").json()
    assert first["pages"] == 2
    assert [h["hpid"] for h in first["results"] + second["results"]] == [
        "A0000191",
        "A0000005",
        "A1100015",
        "A2600001",
    ]


def test_detail(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """A hospital's detail adds acceptance flags and only its active announcements."""
    hospital = seoul_hospitals["middle"]
    SevereIllnessAcceptance.objects.create(hospital=hospital, category=3, accepts=False)
    SevereIllnessAcceptance.objects.create(hospital=hospital, category=1, accepts=True)
    now = timezone.now()
    ERAnnouncement.objects.create(
        hospital=hospital,
        fingerprint="a" * 64,
        message_type=AnnouncementType.SEVERE,
        disease_code="Y0031",
        disease_name="[뇌출혈수술] 거미막하출혈",
        message="장비부족",
        starts_at=now - timedelta(hours=1),
    )
    ERAnnouncement.objects.create(
        hospital=hospital,
        fingerprint="b" * 64,
        message_type=AnnouncementType.ER,
        message="old",
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=1),
    )
    body = api.get("/api/hospitals/A0000005").json()
    assert body["name"] == "서울대학교병원"
    assert [(a["category"], a["accepts"]) for a in body["acceptances"]] == [(1, True), (3, False)]
    assert body["acceptances"][0]["label"] == "[재관류중재술] 심근경색"
    assert [a["message"] for a in body["announcements"]] == ["장비부족"]


def test_unknown_hospital_is_404(api: Client, db: None) -> None:
    """An unknown hpid answers 404 in the error shape."""
    response = api.get("/api/hospitals/NOPE")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == ErrorCode.HOSPITAL_NOT_FOUND


def test_region_codes_in_the_schema_match_the_regions() -> None:
    """The OpenAPI enum of region codes is the list the domain knows."""
    assert set(get_args(RegionCode)) == set(REGIONS_BY_CODE)


def test_regions(api: Client, seoul_hospitals: dict[str, Hospital]) -> None:
    """All 17 regions, with their stream names and hospital counts."""
    regions = api.get("/api/regions").json()
    assert len(regions) == 17
    by_code = {r["code"]: r for r in regions}
    assert by_code["11"] == {
        "code": "11",
        "name": "서울특별시",
        "name_en": "Seoul",
        "stream": "beds.11",
        "hospital_count": 3,
    }
    assert by_code["26"]["hospital_count"] == 1
    assert by_code["50"]["hospital_count"] == 0
