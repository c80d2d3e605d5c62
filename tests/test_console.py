"""The administrators' console over HTTP: who may see it, accounts decided from it, and the
reservation audit log (pages and API), read-only. The live page itself is in Chromium
(tests/test_console_browser.py)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from domain.models import Approval, Reservation, ReservationEvent, Role, User
from domain.services.reservations import (
    reservation_acknowledge,
    reservation_reject,
    reservation_request,
)
from tests.conftest import bearer
from tests.factories import PASSWORD, HospitalFactory, UserFactory
from tests.test_reservations import CONDITION

pytestmark = pytest.mark.django_db

CONSOLE_PAGES = ["/console/", "/console/accounts/", "/console/audit/"]


def _session(user: User) -> Client:
    """A browser that logged in through the log-in page (tokens and a session)."""
    browser = Client()
    response = browser.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return browser


def _reservation(crew: User, hospital_staff: User) -> Reservation:
    assert hospital_staff.hospital is not None
    (made,) = reservation_request(
        crew=crew, condition=CONDITION, hpids=[hospital_staff.hospital.hpid]
    )
    reservation_acknowledge(reservation_id=made.pk, by=hospital_staff)
    reservation_reject(reservation_id=made.pk, by=hospital_staff, reason="no_bed")
    return made


def test_without_a_session_the_console_sends_the_browser_to_log_in(api: Client) -> None:
    """No session: every console page redirects to the log-in page, coming back after."""
    for path in CONSOLE_PAGES:
        response = api.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/login/?next={path}")


@pytest.mark.parametrize("role", [Role.AMBULANCE, Role.HOSPITAL])
def test_non_admins_get_403_on_every_console_page_and_api(role: Role, admin_user: User) -> None:
    """A crew or ER login gets 403 from each console page, action and API it uses."""
    user = UserFactory(role=role, hospital=HospitalFactory() if role == Role.HOSPITAL else None)
    pending = UserFactory(approval=Approval.PENDING)
    browser = _session(user)
    for path in [*CONSOLE_PAGES, "/console/reservations/1/"]:
        response = browser.get(path)
        assert response.status_code == 403, path
        assert "관리자만" in response.content.decode()
    for action in ("approve", "reject", "disable", "enable"):
        response = browser.post(f"/console/accounts/{pending.pk}/{action}/")
        assert response.status_code == 403, action
    for method, path in [
        ("get", "/api/admin/users"),
        ("get", "/api/admin/audit"),
        ("post", f"/api/admin/users/{pending.pk}/approve"),
        ("post", f"/api/admin/users/{pending.pk}/disable"),
    ]:
        response = getattr(browser, method)(path, **bearer(user))
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    pending.refresh_from_db()
    assert pending.approval == Approval.PENDING


def test_the_admin_logs_in_to_the_console(admin_user: User) -> None:
    """An administrator's login leads to the console, whose pages answer."""
    browser = Client()
    response = browser.post("/login/", {"username": admin_user.username, "password": PASSWORD})
    assert response.context["auth"]["next"] == "/console/"
    for path in CONSOLE_PAGES:
        assert browser.get(path).status_code == 200, path


def test_logging_out_ends_the_console_session(admin_user: User) -> None:
    """After the log-out page, the console asks to log in again."""
    browser = _session(admin_user)
    browser.get("/logout/")
    assert browser.get("/console/").status_code == 302


def test_a_disabled_admins_session_stops_working(admin_user: User) -> None:
    """Disabling an administrator ends their console session at once."""
    browser = _session(admin_user)
    admin_user.is_active = False
    admin_user.save(update_fields=["is_active"])
    assert browser.get("/console/accounts/").status_code == 302


def test_an_approved_sign_up_can_log_in(admin_user: User) -> None:
    """Approve a pending sign-up on the accounts page; that user can then log in."""
    pending = UserFactory(username="new-crew", approval=Approval.PENDING)
    assert (
        Client().post("/login/", {"username": "new-crew", "password": PASSWORD}).status_code == 403
    )
    browser = _session(admin_user)
    page = browser.get("/console/accounts/").content.decode()
    assert 'data-testid="pending-new-crew"' in page
    response = browser.post(
        f"/console/accounts/{pending.pk}/approve/", {"next": "/console/accounts/"}, follow=True
    )
    assert "new-crew: 가입을 승인했습니다." in response.content.decode()
    assert 'data-testid="pending-new-crew"' not in response.content.decode()
    assert (
        Client().post("/login/", {"username": "new-crew", "password": PASSWORD}).status_code == 200
    )


def test_a_rejection_keeps_its_reason_and_refusals_are_shown(admin_user: User) -> None:
    """Reject with a reason; deciding again says why it cannot, and changes nothing."""
    pending = UserFactory(approval=Approval.PENDING)
    browser = _session(admin_user)
    browser.post(f"/console/accounts/{pending.pk}/reject/", {"reason": "소속 확인 불가"})
    pending.refresh_from_db()
    assert (pending.approval, pending.rejection_reason) == (Approval.REJECTED, "소속 확인 불가")
    again = browser.post(f"/console/accounts/{pending.pk}/reject/", follow=True)
    assert "already rejected" in again.content.decode()
    assert browser.post(f"/console/accounts/{pending.pk}/erase/").status_code == 404


def test_the_accounts_page_counts_users_by_role_and_filters(admin_user: User) -> None:
    """Active and disabled users per role, and the list filtered by role, state and name."""
    UserFactory(role=Role.AMBULANCE, crew_name="종로 119")
    UserFactory(role=Role.AMBULANCE, is_active=False)
    browser = _session(admin_user)
    page = browser.get("/console/accounts/").context
    assert [row[1:] for row in page["roles"]] == [(1, 1), (0, 0), (1, 0)]
    found = browser.get("/console/accounts/", {"q": "종로"}).context["users"]
    assert [u.crew_name for u in found] == ["종로 119"]
    disabled = browser.get("/console/accounts/", {"state": "disabled"}).context["users"]
    assert [u.is_active for u in disabled] == [False]


@pytest.fixture
def trail(admin_user: User) -> tuple[Reservation, Reservation]:
    """Two reservations from two crews to two hospitals: one rejected, one still pending."""
    staff_a = UserFactory(role=Role.HOSPITAL, hospital=HospitalFactory(name="가나병원"))
    staff_b = UserFactory(role=Role.HOSPITAL, hospital=HospitalFactory(name="다라병원"))
    crew_a = UserFactory(username="crew-a", crew_name="종로 1")
    crew_b = UserFactory(username="crew-b", crew_name="마포 2")
    rejected = _reservation(crew_a, staff_a)
    assert staff_b.hospital is not None
    (pending,) = reservation_request(
        crew=crew_b, condition=CONDITION, hpids=[staff_b.hospital.hpid]
    )
    return rejected, pending


def test_the_audit_page_filters_and_links_to_a_whole_history(
    admin_user: User, trail: tuple[Reservation, Reservation]
) -> None:
    """Filter by hospital, crew, status and time; each row links to its reservation's history."""
    rejected, pending = trail
    browser = _session(admin_user)

    def shown(**query: str) -> list[tuple[int, str]]:
        events = browser.get("/console/audit/", query).context["events"]
        return [(e.reservation_id, e.to_status) for e in events]

    assert len(shown()) == 4  # requested, acknowledged, rejected; requested
    assert {r for r, _ in shown(hospital="가나")} == {rejected.pk}
    assert {r for r, _ in shown(hospital=pending.hospital.hpid)} == {pending.pk}
    assert {r for r, _ in shown(crew="crew-b")} == {pending.pk}
    assert shown(status="rejected") == [(rejected.pk, "rejected")]
    later = (timezone.localtime() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert shown(since=later) == []
    assert len(shown(until=later)) == 4
    refused = browser.get("/console/audit/", {"since": later, "until": "2020-01-01T00:00"})
    assert refused.context["events"] is None
    assert "끝은 시작보다 뒤여야 합니다." in refused.content.decode()

    page = browser.get("/console/audit/").content.decode()
    assert f'href="/console/reservations/{rejected.pk}/"' in page
    detail = browser.get(f"/console/reservations/{rejected.pk}/")
    history = [(e.action, e.from_status, e.to_status, e.reason) for e in detail.context["history"]]
    assert history == [
        ("requested", "", "pending", ""),
        ("acknowledged", "pending", "pending", ""),
        ("rejected", "pending", "rejected", "no_bed"),
    ]
    assert "병상 없음" in detail.content.decode()
    assert browser.get("/console/reservations/999999/").status_code == 404


def test_the_audit_page_pages(admin_user: User) -> None:
    """More transitions than a page: the next page holds the rest."""
    staff = UserFactory(role=Role.HOSPITAL, hospital=HospitalFactory())
    for n in range(26):
        _reservation(UserFactory(username=f"pager-{n}"), staff)  # 3 transitions each
    browser = _session(admin_user)
    first = browser.get("/console/audit/").context["events"]
    second = browser.get("/console/audit/", {"page": 2}).context["events"]
    assert (len(first), len(second), first.paginator.count) == (50, 28, 78)
    assert not {e.pk for e in first} & {e.pk for e in second}


def test_the_audit_api_filters_and_is_read_only(
    api: Client, admin_user: User, trail: tuple[Reservation, Reservation]
) -> None:
    """GET /api/admin/audit filters like the page; nothing can write to the trail."""
    rejected, _ = trail
    response = api.get("/api/admin/audit", {"reservation": rejected.pk}, **bearer(admin_user))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["action"], r["to_status"], r["actor_role"]) for r in rows] == [
        ("rejected", "rejected", "hospital"),
        ("acknowledged", "pending", "hospital"),
        ("requested", "pending", "ambulance"),
    ]
    assert rows[0]["crew"] == "crew-a"
    assert rows[0]["hospital_name"] == "가나병원"
    bad = api.get("/api/admin/audit", {"status": "lost"}, **bearer(admin_user))
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    for method in ("post", "put", "patch", "delete"):
        refused = getattr(api, method)("/api/admin/audit", **bearer(admin_user))
        assert refused.status_code == 405, method
        assert "error" in refused.json()
    count = ReservationEvent.objects.count()
    with pytest.raises(PermissionError):
        ReservationEvent.objects.first().delete()  # type: ignore[union-attr]
    assert ReservationEvent.objects.count() == count
