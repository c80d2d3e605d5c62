from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from domain.api.schemas import ErrorOut, Paging, RejectIn, UserOut, page_of
from domain.api.security import access_token_auth
from domain.models import User
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
