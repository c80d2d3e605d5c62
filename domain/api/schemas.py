"""Request and response shapes of the JSON API (pydantic, published as OpenAPI)."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.utils import timezone
from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel, create_model, field_validator
from pydantic_core import PydanticCustomError

from domain.bed_fields import STATUS_VALUE_KINDS, Kind
from domain.free_text import control_character_problem, text_problem
from domain.models import ERStatus, Hospital, User
from domain.regions import REGIONS_BY_CODE
from domain.selectors.hospitals import (
    HospitalHit,
    RegionSummary,
    data_age_seconds,
)
from domain.severe_illness import SEVERE_ILLNESS_CATEGORIES

MAX_PAGE_SIZE = 100
RegionCode = Literal[tuple(REGIONS_BY_CODE)]  # type: ignore[valid-type]
USERNAME_PATTERN = r"^[\w.@+-]+$"


class Paging(Schema):
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def page_of(
    items: Sequence[Any] | QuerySet[Any], paging: Paging, shape: Callable[[Any], Any] = lambda x: x
) -> dict[str, Any]:
    """One page of ``items`` in the API's page shape, each item passed through ``shape``."""
    count = len(items) if isinstance(items, Sequence) else items.count()
    start = (paging.page - 1) * paging.page_size
    return {
        "count": count,
        "page": paging.page,
        "page_size": paging.page_size,
        "pages": math.ceil(count / paging.page_size),
        "results": [shape(item) for item in items[start : start + paging.page_size]],
    }


class ErrorDetail(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorOut(Schema):
    error: ErrorDetail


def _checked(problem_of: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise PydanticCustomError("free_text", problem)
        return value

    return AfterValidator(check)


# Free text of a request body: no control characters but tab and newline (domain.free_text).
FreeText = Annotated[str, _checked(control_character_problem)]
# Free text about a patient (the condition's complaint and note): also no identifiers.
PatientText = Annotated[str, _checked(text_problem)]


class BodyIn(BaseModel):
    """Base of request bodies. Plain pydantic: only a JSON object validates (ninja's ``Schema``
    would read attributes off any value, so a list or a number would pass as an empty body)."""


# --- auth -----------------------------------------------------------------------------------


class SignUpIn(BodyIn):
    username: str = Field(min_length=3, max_length=150, pattern=USERNAME_PATTERN)
    password: str = Field(
        min_length=8, max_length=128, description="Not common, not all digits, not the username."
    )
    role: Literal["ambulance", "hospital"] = Field(description="Admins are not self-service.")
    hospital: FreeText | None = Field(None, max_length=10, description="hpid, for hospital staff.")
    agency: FreeText = Field("", max_length=100)
    crew_name: FreeText = Field("", max_length=100)
    phone: FreeText = Field("", max_length=20)


class CredentialsIn(BodyIn):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(BodyIn):
    refresh: str = Field(min_length=1, max_length=4096)


class PasswordChangeIn(BodyIn):
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128)


class TokenPairOut(Schema):
    access: str
    refresh: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_expires_in: int


class UserOut(Schema):
    id: int
    username: str
    role: str
    approval: str
    hospital: str | None
    agency: str
    crew_name: str
    phone: str
    date_joined: datetime
    approval_decided_at: datetime | None
    rejection_reason: str

    @staticmethod
    def resolve_hospital(user: User) -> str | None:
        return user.hospital.hpid if user.hospital else None


class HistoryOut(Schema):
    """One transition of a reservation (its audit trail)."""

    action: str
    from_status: str
    to_status: str
    actor: str | None = Field(description="The username; null for the system.")
    actor_role: str
    reason: str
    note: str
    at: datetime


class RejectIn(BodyIn):
    reason: FreeText = Field("", max_length=300)


# --- regions and hospitals ------------------------------------------------------------------


class RegionOut(Schema):
    code: str
    name: str
    name_en: str
    stream: str
    hospital_count: int

    @staticmethod
    def build(summary: RegionSummary) -> "RegionOut":
        r = summary.region
        return RegionOut(
            code=r.code,
            name=r.name,
            name_en=r.name_en,
            stream=r.stream,
            hospital_count=summary.hospital_count,
        )


class HospitalFilters(Paging):
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    radius_km: float | None = Field(None, gt=0, le=500, allow_inf_nan=False)
    region: RegionCode | None = Field(None, description="Region code (GET /api/regions).")  # type: ignore[valid-type]
    min_er_beds: int | None = Field(None, ge=0, le=1000)
    needs: str | None = Field(
        None, max_length=200, description="Comma-separated equipment: ct,mri,angio,ventilator…"
    )
    q: str | None = Field(None, max_length=100, description="Name or address contains.")
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE)

    @field_validator(
        "lat", "lon", "radius_km", "region", "min_er_beds", "needs", "q", mode="before"
    )
    @classmethod
    def _blank_means_absent(cls, value: Any) -> Any:
        """``?radius_km=&q=`` (as an HTML form sends it) means the filter is not used."""
        return None if value == "" else value

    def need_list(self) -> list[str]:
        return [n.strip().lower() for n in (self.needs or "").split(",") if n.strip()]


def _bed_value_type(kind: Kind) -> Any:
    return {Kind.COUNT: int | None, Kind.FLAG: bool | None, Kind.MIXED: int | bool | None}[kind]


BedsOut = create_model(  # type: ignore[call-overload]
    "BedsOut",
    __base__=Schema,
    __doc__="Every ER status value; null is unknown. See docs/api.md for meanings.",
    **{name: (_bed_value_type(kind), None) for name, kind in STATUS_VALUE_KINDS.items()},
)


class StatusOut(Schema):
    hvidate: datetime | None = Field(description="The hospital's own last input (upstream).")
    ingested_at: datetime | None
    data_age_seconds: int | None = Field(description="now − hvidate; null when unknown.")
    stale: bool = Field(description="Polls of its region have failed for too long.")
    held: int = Field(description="ER beds held by approved reservations (not in the counts).")
    beds: BedsOut  # type: ignore[valid-type]

    @staticmethod
    def build(status: ERStatus, now: datetime, context: "StatusContext") -> "StatusOut":
        return StatusOut(
            hvidate=status.hvidate,
            ingested_at=status.ingested_at,
            data_age_seconds=data_age_seconds(status, now),
            stale=status.hospital.region_code in context.stale_regions,
            held=context.held.get(status.hospital_id, 0),
            beds=BedsOut(**status.values()),
        )


@dataclass(frozen=True)
class StatusContext:
    """What a status needs beyond its row, read once per request by the view (schemas run no
    queries)."""

    stale_regions: set[str]
    held: dict[int, int]


class HospitalOut(Schema):
    hpid: str
    name: str
    address: str
    region_code: str
    region_name: str
    sigungu: str
    main_phone: str
    er_phone: str
    latitude: float | None
    longitude: float | None
    emergency_class: str
    emergency_class_name: str
    distance_km: float | None = Field(description="From lat/lon, when given.")
    status: StatusOut | None = Field(description="Null until the first status arrives.")

    @classmethod
    def fields_of(
        cls, hospital: Hospital, distance: float | None, now: datetime, context: StatusContext
    ) -> dict[str, Any]:
        status = getattr(hospital, "er_status", None)
        return {
            "hpid": hospital.hpid,
            "name": hospital.name,
            "address": hospital.address,
            "region_code": hospital.region_code,
            "region_name": REGIONS_BY_CODE[hospital.region_code].name,
            "sigungu": hospital.sigungu,
            "main_phone": hospital.main_phone,
            "er_phone": hospital.er_phone,
            "latitude": hospital.latitude,
            "longitude": hospital.longitude,
            "emergency_class": hospital.emergency_class,
            "emergency_class_name": hospital.get_emergency_class_display(),
            "distance_km": None if distance is None else round(distance, 3),
            "status": StatusOut.build(status, now, context) if status else None,
        }

    @classmethod
    def build(cls, hit: HospitalHit, context: StatusContext) -> "HospitalOut":
        return cls(**cls.fields_of(hit.hospital, hit.distance_km, timezone.now(), context))


class HospitalPage(Schema):
    count: int
    page: int
    page_size: int
    pages: int
    results: list[HospitalOut]


class AcceptanceOut(Schema):
    category: int
    label: str
    accepts: bool | None
    age_limit: str


class AnnouncementOut(Schema):
    message_type: str
    disease_code: str
    disease_name: str
    message: str
    starts_at: datetime | None
    ends_at: datetime | None


class HospitalDetailOut(HospitalOut):
    acceptances: list[AcceptanceOut]
    announcements: list[AnnouncementOut]

    @classmethod
    def build_detail(cls, hospital: Hospital, context: StatusContext) -> "HospitalDetailOut":
        """``hospital`` as ``hospital_get`` returns it (acceptances and announcements
        prefetched)."""
        return cls(
            **cls.fields_of(hospital, None, timezone.now(), context),
            acceptances=[
                AcceptanceOut(
                    category=a.category,
                    label=SEVERE_ILLNESS_CATEGORIES[a.category],
                    accepts=a.accepts,
                    age_limit=a.age_limit,
                )
                for a in sorted(hospital.acceptances.all(), key=lambda a: a.category)
            ],
            announcements=[
                AnnouncementOut.model_validate(a, from_attributes=True)
                for a in hospital.announcements.all()
            ],
        )
