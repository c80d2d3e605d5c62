from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from domain.api.schemas import ErrorOut, HistoryOut, Paging, RejectIn, UserOut, page_of
from domain.api.security import access_token_auth
from domain.models import ReservationEvent, ReservationStatus, User
from domain.selectors.audit import AuditFilters, audit_events
from domain.selectors.users import user_list
from domain.services.users import user_approve, user_disable, user_enable, user_reject

router = Router(tags=["admin"], auth=access_token_auth)


class UserFilters(Paging):
    approval: Literal["pending", "active", "rejected"] | None = None
    role: Literal["ambulance", "hospital", "admin"] | None = None


class UserPage(Schema):
    count: int
    page: int
    page_size: int
    pages: int
    results: list[UserOut]


_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def _caller(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


@router.get("/users", response={200: UserPage, **_ERRORS})
def users(request: HttpRequest, filters: Query[UserFilters]) -> dict[str, object]:
    """Accounts, oldest first; ``approval=pending`` is the approval queue."""
    found = user_list(by=_caller(request), approval=filters.approval, role=filters.role)
    return page_of(found, filters)


@router.post("/users/{user_id}/approve", response={200: UserOut, **_ERRORS})
def approve(request: HttpRequest, user_id: int) -> User:
    """Activate a pending or rejected account."""
    return user_approve(user_id=user_id, by=_caller(request))


@router.post("/users/{user_id}/reject", response={200: UserOut, **_ERRORS})
def reject(request: HttpRequest, user_id: int, payload: RejectIn | None = None) -> User:
    """Reject a pending account or withdraw an active one's access (the body is optional)."""
    reason = payload.reason if payload else ""
    return user_reject(user_id=user_id, by=_caller(request), reason=reason)


@router.post("/users/{user_id}/disable", response={200: UserOut, **_ERRORS})
def disable(request: HttpRequest, user_id: int) -> User:
    """Take an account's access away: its logins end and its open sockets close (4403)."""
    return user_disable(user_id=user_id, by=_caller(request))


@router.post("/users/{user_id}/enable", response={200: UserOut, **_ERRORS})
def enable(request: HttpRequest, user_id: int) -> User:
    """Give a disabled account its access back (it logs in again)."""
    return user_enable(user_id=user_id, by=_caller(request))


class AuditQuery(Paging):
    hospital: str = Field("", max_length=200, description="An hpid, or part of a name.")
    crew: str = Field("", max_length=150, description="A username, or part of a unit or agency.")
    status: Literal[tuple(ReservationStatus.values)] | None = Field(  # type: ignore[valid-type]
        None, description="The status the transition led to."
    )
    since: datetime | None = None
    until: datetime | None = None
    reservation: int | None = Field(None, ge=1, description="One reservation's transitions.")


class AuditEventOut(HistoryOut):
    """A transition with the reservation it belongs to."""

    id: int
    reservation: int
    hpid: str
    hospital_name: str
    crew: str = Field(description="The crew's username.")


class AuditPage(Schema):
    count: int
    page: int
    page_size: int
    pages: int
    results: list[AuditEventOut]


def _audit_row(event: ReservationEvent) -> dict[str, Any]:
    reservation = event.reservation
    return {
        "id": event.pk,
        "reservation": reservation.pk,
        "hpid": reservation.hospital.hpid,
        "hospital_name": reservation.hospital.name,
        "crew": reservation.crew.username,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor.username if event.actor else None,
        "actor_role": event.actor_role,
        "reason": event.reason,
        "note": event.note,
        "at": event.at,
    }


@router.get("/audit", response={200: AuditPage, **_ERRORS})
def audit(request: HttpRequest, query: Query[AuditQuery]) -> dict[str, object]:
    """Every reservation transition (actor, role, time, from → to, reason), newest first.
    Read-only: the trail has no write API, and its rows refuse updates and deletes."""
    filters = AuditFilters(
        hospital=query.hospital,
        crew=query.crew,
        status=query.status or "",
        since=query.since,
        until=query.until,
        reservation_id=query.reservation,
    )
    return page_of(audit_events(by=_caller(request), filters=filters), query, _audit_row)
