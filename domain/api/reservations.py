from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, HeaderEx, P, Query, Router, Schema, Status
from pydantic import BaseModel, StrictFloat, StrictInt

from domain.api.schemas import ErrorOut, FreeText, HistoryOut, Paging, PatientText, page_of
from domain.api.security import access_token_auth
from domain.models import AgeBand, Consciousness, DeclineReason, ReservationStatus, Sex, User
from domain.selectors.reservations import (
    reservation_get,
    reservation_history,
    reservation_list,
    reservation_summary,
)
from domain.services import reservations as service
from domain.services.idempotency import Answer, idempotent_request_run

router = Router(tags=["reservations"], auth=access_token_auth)
_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}
_CREATE_ERRORS = {**_ERRORS, 422: ErrorOut, 429: ErrorOut}


class ConditionIn(BaseModel):
    """The patient, without names or identifiers. Vital signs are checked against the clinical
    ranges of ``domain.models.clinical.CLINICAL_RANGES`` (400 with the field named).

    Counts are JSON integers, strictly: ``true`` or ``"120"`` is a 400, never 1 or 120. The
    temperature is a decimal, sent as a number or a string (``37.8`` or ``"37.8"``, as events
    carry it), not a boolean. The complaint and the note refuse control characters and
    anything shaped like a 주민등록번호 or a phone number (``domain.free_text``)."""

    sex: Literal[tuple(Sex.values)]  # type: ignore[valid-type]
    age_band: Literal[tuple(AgeBand.values)]  # type: ignore[valid-type]
    systolic_bp: StrictInt | None = Field(None)
    diastolic_bp: StrictInt | None = Field(None)
    pulse: StrictInt | None = Field(None)
    temperature: Decimal | None = Field(None, max_digits=3, decimal_places=1)
    respiratory_rate: StrictInt | None = Field(None)
    spo2: StrictInt | None = Field(None)
    consciousness: Literal[tuple(Consciousness.values)]  # type: ignore[valid-type]
    pre_ktas: StrictInt | None = Field(
        None, ge=1, le=5, description="Pre-KTAS level: 1 resuscitation … 5 non-urgent."
    )
    chief_complaint: PatientText = Field(min_length=1, max_length=200)
    suspected_category: StrictInt | None = Field(
        None, ge=1, le=27, description="Severe-illness category"
    )
    note: PatientText = Field(
        "", max_length=1000, description="No names or identifiers (no 주민등록번호, no phone)."
    )


class RequestIn(BaseModel):
    hospitals: list[str] = Field(min_length=1, max_length=3, description="One to three hpids.")
    condition: ConditionIn
    latitude: StrictFloat | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    longitude: StrictFloat | None = Field(None, ge=-180, le=180, allow_inf_nan=False)


class DeclineIn(BaseModel):
    reason: Literal[tuple(DeclineReason.values)]  # type: ignore[valid-type]
    note: FreeText = Field("", max_length=500)


class ReservationOut(Schema):
    id: int
    status: str
    hpid: str
    hospital_name: str
    group: int = Field(description="Shared by the reservations of one multi-hospital request.")
    crew: dict[str, Any]
    condition: dict[str, Any]
    distance_km: float | None
    eta_minutes: int | None
    created_at: datetime
    expires_at: datetime
    acknowledged_at: datetime | None
    reminded_at: datetime | None
    decided_at: datetime | None
    decline_reason: str | None
    decline_note: str
    hold_expires_at: datetime | None
    hold_released_at: datetime | None
    closed_at: datetime | None


class ReservationPage(Schema):
    count: int
    page: int
    page_size: int
    pages: int
    results: list[ReservationOut]


class ListFilters(Paging):
    status: Literal[tuple(ReservationStatus.values)] | None = None  # type: ignore[valid-type]


def _user(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


@router.post("", response={201: list[ReservationOut], **_CREATE_ERRORS})
def create(
    request: HttpRequest,
    payload: RequestIn,
    response: HttpResponse,
    idempotency_key: HeaderEx[
        str | None,
        P(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key returns the first answer and "
            "creates nothing (docs/api.md § Idempotency-Key).",
        ),
    ] = None,
) -> Status[Any]:
    """A crew sends the patient's condition to one to three hospitals at once."""

    def run() -> Answer:
        created = service.reservation_request(
            crew=_user(request),
            condition=payload.condition.model_dump(),
            hpids=payload.hospitals,
            latitude=payload.latitude,
            longitude=payload.longitude,
        )
        body = [ReservationOut(**reservation_summary(r)).model_dump(mode="json") for r in created]
        return Answer(status=201, body=body)

    if idempotency_key is None:
        answer = run()
    else:
        answer = idempotent_request_run(
            user=_user(request),
            key=idempotency_key,
            operation="reservation_request",
            body=payload.model_dump(mode="json"),
            run=run,
        )
        response["Idempotent-Replayed"] = "true" if answer.replayed else "false"
    return Status(answer.status, answer.body)


@router.get("", response={200: ReservationPage, **_ERRORS})
def list_reservations(request: HttpRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    """A crew's own reservations, a hospital's queue, or (admins) all; newest first."""
    found = reservation_list(user=_user(request), status=filters.status)
    return page_of(found, filters, reservation_summary)


@router.get("/{reservation_id}", response={200: ReservationOut, **_ERRORS})
def detail(request: HttpRequest, reservation_id: int) -> dict[str, Any]:
    """One reservation the caller may see."""
    return reservation_summary(reservation_get(user=_user(request), reservation_id=reservation_id))


@router.get("/{reservation_id}/history", response={200: list[HistoryOut], **_ERRORS})
def history(request: HttpRequest, reservation_id: int) -> list[dict[str, Any]]:
    """Every transition, oldest first (read-only: nothing can edit or delete it)."""
    return reservation_history(user=_user(request), reservation_id=reservation_id)


@router.post("/{reservation_id}/acknowledge", response={200: ReservationOut, **_ERRORS})
def acknowledge(request: HttpRequest, reservation_id: int) -> dict[str, Any]:
    """ER staff: the request has been seen."""
    return reservation_summary(
        service.reservation_acknowledge(reservation_id=reservation_id, by=_user(request))
    )


@router.post("/{reservation_id}/approve", response={200: ReservationOut, **_ERRORS})
def approve(request: HttpRequest, reservation_id: int) -> dict[str, Any]:
    """ER staff: accept the patient (withdraws the patient's other pending requests)."""
    return reservation_summary(
        service.reservation_approve(reservation_id=reservation_id, by=_user(request))
    )


@router.post("/{reservation_id}/reject", response={200: ReservationOut, **_ERRORS})
def reject(request: HttpRequest, reservation_id: int, payload: DeclineIn) -> dict[str, Any]:
    """ER staff: decline with a structured reason (``other`` needs a note)."""
    return reservation_summary(
        service.reservation_reject(
            reservation_id=reservation_id,
            by=_user(request),
            reason=payload.reason,
            note=payload.note,
        )
    )


@router.post("/{reservation_id}/cancel", response={200: ReservationOut, **_ERRORS})
def cancel(request: HttpRequest, reservation_id: int) -> dict[str, Any]:
    """The crew: call it off (releases an approved bed hold)."""
    return reservation_summary(
        service.reservation_cancel(reservation_id=reservation_id, by=_user(request))
    )


@router.post("/{reservation_id}/complete", response={200: ReservationOut, **_ERRORS})
def complete(request: HttpRequest, reservation_id: int) -> dict[str, Any]:
    """The crew: arrived and handed over."""
    return reservation_summary(
        service.reservation_complete(reservation_id=reservation_id, by=_user(request))
    )
