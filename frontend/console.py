"""The administrators' console (``/console/``): the live figures (a shell its script fills from
the ``metrics`` stream), accounts, and the reservation audit log (both rendered here).

Unlike the crew and ER pages, the console is guarded on the server: the log-in page also
starts a Django session, so these views know who asks. Without one they send the browser to
log in; anyone but an active administrator gets 403. The rules behind each action stay in the
domain services and selectors, which check the caller again.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from domain.errors import ApplicationError
from domain.models import Approval, Role, User
from domain.selectors.audit import AuditFilters, audit_events
from domain.selectors.reservations import reservation_get
from domain.selectors.users import user_list
from domain.services.users import user_approve, user_disable, user_enable, user_reject
from frontend.forms import AuditFilterForm, UserFilterForm
from frontend.views import page

PAGE_SIZE = 50
AdminView = Callable[..., HttpResponse]


def admin_only(view: AdminView) -> AdminView:
    """Log in first (no session), 403 for anyone but an active administrator."""

    @wraps(view)
    @never_cache
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), login_url="/login/")
        if not isinstance(user, User) or user.role != Role.ADMIN or not user.may_sign_in:
            return page(request, "frontend/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return guarded


@require_GET
@admin_only
def live(request: HttpRequest) -> HttpResponse:
    """Live figures, ingestion health and ER-screen presence (frontend/src/console.js)."""
    return page(request, "frontend/console_live.html", {"section": "live"})


@require_GET
@admin_only
def accounts(request: HttpRequest) -> HttpResponse:
    """Pending sign-ups to approve or reject, active users by role, and every account."""
    admin: User = request.user  # type: ignore[assignment]
    pending = user_list(by=admin, approval=Approval.PENDING)
    form = UserFilterForm(request.GET or None)
    found = user_list(by=admin)
    if form.is_valid():
        found = _user_filtered(found, form.cleaned_data)
    counts = (
        User.objects.values("role")
        .annotate(
            active=Count("id", filter=Q(is_active=True, approval=Approval.ACTIVE)),
            disabled=Count("id", filter=Q(is_active=False)),
        )
        .order_by("role")
    )
    by_role: dict[str, dict[str, Any]] = {row["role"]: dict(row) for row in counts}
    return page(
        request,
        "frontend/console_accounts.html",
        {
            "section": "accounts",
            "pending": pending,
            "form": form,
            "users": Paginator(found, PAGE_SIZE).get_page(request.GET.get("page")),
            "roles": [
                (label, row.get("active", 0), row.get("disabled", 0))
                for value, label in _role_labels()
                for row in [by_role.get(value, {})]
            ],
            "query": _query_without_page(request),
        },
    )


def _role_labels() -> list[tuple[str, str]]:
    return [(Role.AMBULANCE, _("구급대")), (Role.HOSPITAL, _("응급실")), (Role.ADMIN, _("관리자"))]


def _user_filtered(users: Any, data: dict[str, Any]) -> Any:
    if data["role"]:
        users = users.filter(role=data["role"])
    state = data["state"]
    if state == "disabled":
        users = users.filter(is_active=False)
    elif state:
        users = users.filter(approval=state, is_active=True)
    if text := data["q"].strip():
        users = users.filter(
            Q(username__icontains=text)
            | Q(crew_name__icontains=text)
            | Q(agency__icontains=text)
            | Q(hospital__name__icontains=text)
            | Q(hospital__hpid=text)
        )
    return users


_ACTIONS: dict[str, tuple[Callable[..., User], Any]] = {
    "approve": (user_approve, gettext_lazy("{user}: 가입을 승인했습니다.")),
    "reject": (user_reject, gettext_lazy("{user}: 가입을 거절했습니다.")),
    "disable": (
        user_disable,
        gettext_lazy("{user}: 사용을 중지했습니다. 열린 연결은 곧 끊깁니다."),
    ),
    "enable": (user_enable, gettext_lazy("{user}: 다시 사용할 수 있게 했습니다.")),
}


@require_POST
@admin_only
def account_action(request: HttpRequest, user_id: int, action: str) -> HttpResponse:
    """Approve, reject, disable or enable one account, then back to the accounts page."""
    if action not in _ACTIONS:
        return page(request, "frontend/forbidden.html", status=404)
    service, done = _ACTIONS[action]
    extra = {"reason": request.POST.get("reason", "")[:300]} if action == "reject" else {}
    try:
        user = service(user_id=user_id, by=request.user, **extra)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, str(done).format(user=user.username))
    back = request.POST.get("next", "")
    if not (back.startswith("/console/accounts/") and url_has_allowed_host_and_scheme(back, None)):
        back = "/console/accounts/"
    return HttpResponseRedirect(back)


@require_GET
@admin_only
def audit(request: HttpRequest) -> HttpResponse:
    """Every reservation transition, filtered by hospital, crew, status and time, paged."""
    form = AuditFilterForm(request.GET or None)
    events = None
    if form.is_valid() or not request.GET:
        data = form.cleaned_data if request.GET else {}
        filters = AuditFilters(
            hospital=data.get("hospital", ""),
            crew=data.get("crew", ""),
            status=data.get("status", ""),
            since=data.get("since"),
            until=data.get("until"),
        )
        found = audit_events(by=request.user, filters=filters)  # type: ignore[arg-type]
        events = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    return page(
        request,
        "frontend/console_audit.html",
        {"section": "audit", "form": form, "events": events, "query": _query_without_page(request)},
    )


@require_GET
@admin_only
def reservation(request: HttpRequest, reservation_id: int) -> HttpResponse:
    """One reservation and its whole history, oldest first."""
    admin: User = request.user  # type: ignore[assignment]
    try:
        found = reservation_get(user=admin, reservation_id=reservation_id)
    except ApplicationError:
        return page(request, "frontend/console_reservation.html", {"section": "audit"}, status=404)
    history = audit_events(by=admin, filters=AuditFilters(reservation_id=found.pk)).order_by(
        "at", "id"
    )
    return page(
        request,
        "frontend/console_reservation.html",
        {"section": "audit", "reservation": found, "history": history},
    )


def _query_without_page(request: HttpRequest) -> str:
    """The filters of this page, for its paging links (``&page=`` is appended)."""
    return urlencode([(key, value) for key, value in request.GET.items() if key != "page"])
