import math
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from domain.api.schemas import MAX_PAGE_SIZE, ErrorOut, RejectIn, UserOut
from domain.api.security import access_token_auth
from domain.models import User
from domain.selectors.users import user_list
from domain.services.users import user_approve, user_reject

router = Router(tags=["admin"], auth=access_token_auth)


class UserFilters(Schema):
    approval: Literal["pending", "active", "rejected"] | None = None
    role: Literal["ambulance", "hospital", "admin"] | None = None
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


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
    count = found.count()
    start = (filters.page - 1) * filters.page_size
    return {
        "count": count,
        "page": filters.page,
        "page_size": filters.page_size,
        "pages": math.ceil(count / filters.page_size),
        "results": list(found[start : start + filters.page_size]),
    }


@router.post("/users/{user_id}/approve", response={200: UserOut, **_ERRORS})
def approve(request: HttpRequest, user_id: int) -> User:
    """Activate a pending or rejected account."""
    return user_approve(user_id=user_id, by=_caller(request))


@router.post("/users/{user_id}/reject", response={200: UserOut, **_ERRORS})
def reject(request: HttpRequest, user_id: int, payload: RejectIn | None = None) -> User:
    """Reject a pending account or withdraw an active one's access (the body is optional)."""
    reason = payload.reason if payload else ""
    return user_reject(user_id=user_id, by=_caller(request), reason=reason)
