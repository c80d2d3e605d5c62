"""The ambulance tablet and the ER screen in real Chromium, against the real system: weer-serve
(daphne), a Celery worker polling the upstream simulator, MariaDB and Redis, all started here.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, Route, WebSocket, expect
from pytest_django import Settings

from domain.models import ERStatus, Hospital, Reservation, ReservationStatus, Role, User
from domain.services.reservations import reservations_sweep
from ingestion.simulator import SimulatorServer, running_simulator
from tests.browser import (
    SocketSwitch,
    System,
    check_layout,
    chromium,
    collect_static,
    control,
    load_seoul,
    open_page,
    poll_through_the_worker,
    screenshot_dir,
    signed_in,
)
from tests.conftest import run_celery_worker, run_server
from tests.factories import UserFactory
from tests.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ONE_SECOND_MS = 1000


@pytest.fixture(scope="module")
def system(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    collect_static()
    log_dir = tmp_path_factory.mktemp("browser-system")
    with (
        running_simulator(walk_interval=0, service_key="e2e-key") as (simulator, _),
        run_celery_worker(log_dir, simulator),
        run_server(log_dir, "-m", "realtime.serving.serve", "--processes", "1") as server,
    ):
        yield System(server, simulator)


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM
    calls here as if they came from async code; they do not (nothing else runs on that loop),
    so this module allows them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def browser(system: System) -> Iterator[Browser]:
    """A fresh Chromium per test, closed (with every page and socket of the test) before the
    next test's data is loaded, and before the system stops."""
    with chromium() as browser:
        yield browser


@dataclass(frozen=True)
class Seoul:
    """This test's data: Seoul loaded from the upstream, a crew and the staff of two ERs."""

    a: Hospital
    b: Hospital
    crew: User
    staff_a: User
    staff_b: User


@pytest.fixture
def seoul(system: System, settings: Settings) -> Seoul:
    settings.UPSTREAM_BASE_URL = system.simulator.api_url
    settings.UPSTREAM_SERVICE_KEY = "e2e-key"
    hospitals = load_seoul()
    assert len(hospitals) > 10
    a, b = hospitals[0], hospitals[1]
    return Seoul(
        a=a,
        b=b,
        crew=UserFactory(role=Role.AMBULANCE, agency="종로소방서", crew_name="종로 119 구급대 1"),
        staff_a=UserFactory(role=Role.HOSPITAL, hospital=a),
        staff_b=UserFactory(role=Role.HOSPITAL, hospital=b),
    )


def _position(hospital: Hospital) -> tuple[float, float]:
    assert hospital.latitude is not None
    assert hospital.longitude is not None
    return hospital.latitude, hospital.longitude


# The crew page is live and holds the beds.all stream's state (its snapshot has arrived).
_HAS_BEDS = "() => window.weerLive?.status === 'live' && window.weerLive.lastSeq['beds.all'] > 0"


def _crew_page(
    browser: Browser, system: System, seoul: Seoul, access_lifetime: timedelta | None = None
) -> Page:
    """The crew's tablet standing at hospital A (so A and B are among the nearest rows)."""
    context = signed_in(
        browser, seoul.crew, position=_position(seoul.a), access_lifetime=access_lifetime
    )
    page = open_page(context, system.server, "/crew/")
    page.wait_for_function(_HAS_BEDS)
    page.get_by_test_id("position-locate").click()
    expect(page.get_by_test_id(f"er-row-{seoul.a.hpid}")).to_be_visible()
    return page


def _er_general(hpid: str) -> int:
    value = ERStatus.objects.get(hospital__hpid=hpid).values()["er_general"]
    assert isinstance(value, int)
    return value


def _change_beds_upstream(simulator: SimulatorServer, hpid: str) -> int:
    """Set a new ER bed count for ``hpid`` at the upstream and have the worker poll it."""
    new = _er_general(hpid) + 7
    control(simulator, "PUT", f"hospitals/{hpid}", {"values": {"hvec": new}})
    poll_through_the_worker()
    return new


def test_a_bed_change_upstream_is_highlighted_on_the_tablet_within_a_second(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """A value set at the upstream flashes old → new on the crew's row within 1 s of the poll
    that picked it up."""
    page = _crew_page(browser, system, seoul)
    cell = page.get_by_test_id(f"er-row-{seoul.a.hpid}").get_by_test_id("er-general")
    old = _er_general(seoul.a.hpid)
    expect(cell).to_have_attribute("data-value", str(old))
    new = _change_beds_upstream(system.simulator, seoul.a.hpid)
    expect(cell).to_have_attribute("data-flash", "on", timeout=ONE_SECOND_MS)
    expect(cell).to_have_attribute("data-value", str(new))
    expect(cell).to_contain_text(f"{old}")
    expect(cell).to_contain_text(f"{new}")


def _request_both(page: Page, seoul: Seoul) -> None:
    """The crew picks ERs A and B and sends them the patient's condition."""
    for hospital in (seoul.a, seoul.b):
        page.get_by_test_id(f"er-row-{hospital.hpid}").get_by_test_id("select-er").click()
    page.get_by_test_id("open-form").click()
    form = page.get_by_test_id("reservation-form")
    form.get_by_test_id("form-sex-male").click()
    form.get_by_test_id("form-age-70_79").click()
    form.get_by_test_id("form-pre-ktas-2").click()
    form.get_by_test_id("form-consciousness-verbal").click()
    form.get_by_test_id("form-systolic_bp").fill("90")
    form.get_by_test_id("form-pulse").fill("120")
    form.get_by_test_id("form-spo2").fill("91")
    form.get_by_test_id("form-chief_complaint").fill("갑작스러운 우측 편마비, 40분 전 발생")
    form.get_by_test_id("form-submit").click()


def _sound_playing(page: Page) -> bool:
    return bool(page.get_by_test_id("alert-sound").evaluate("audio => !audio.paused"))


def test_a_request_alerts_both_ers_and_the_decision_reaches_the_crew(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """Sent to two ERs: each screen alerts within 1 s with its alarm sounding; A acknowledges
    (the crew sees "seen") and approves (the crew sees it within 1 s), and B's card shows the
    request withdrawn."""
    screens = {
        hospital.hpid: open_page(
            signed_in(browser, staff, viewport={"width": 1920, "height": 1080}),
            system.server,
            "/er/",
        )
        for hospital, staff in ((seoul.a, seoul.staff_a), (seoul.b, seoul.staff_b))
    }
    crew = _crew_page(browser, system, seoul)
    _request_both(crew, seoul)
    sent_at = time.monotonic()
    for screen in screens.values():
        left_ms = ONE_SECOND_MS - (time.monotonic() - sent_at) * 1000
        expect(screen.get_by_test_id("alert")).to_be_visible(timeout=max(left_ms, 1))
    for screen in screens.values():
        assert _sound_playing(screen)
    screen_a, screen_b = screens[seoul.a.hpid], screens[seoul.b.hpid]
    status_a = crew.get_by_test_id(f"request-status-{seoul.a.hpid}")
    expect(status_a).to_have_attribute("data-status", "sent")

    screen_a.get_by_test_id("alert-acknowledge").click()
    expect(status_a).to_have_attribute("data-status", "seen")
    assert not _sound_playing(screen_a)
    card_a = screen_a.locator("[data-testid^='request-card-']")
    card_a.get_by_test_id("request-approve").click()
    expect(status_a).to_have_attribute("data-status", "approved", timeout=ONE_SECOND_MS)

    reservation_b = Reservation.objects.get(hospital=seoul.b)
    assert reservation_b.status == ReservationStatus.WITHDRAWN
    card_b = screen_b.get_by_test_id(f"request-card-{reservation_b.pk}")
    expect(card_b).to_have_attribute("data-status", "withdrawn")  # shown a while, with why
    expect(card_b.get_by_test_id("request-closed-reason")).to_be_visible()
    expect(card_b.get_by_test_id("request-approve")).to_have_count(0)


def test_a_dropped_socket_resumes_and_misses_nothing(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """While the tablet's socket is down the page says so; a bed change made meanwhile arrives
    after the reconnect without a reload, resumed with since (no snapshot), with no seq gap."""
    context = signed_in(browser, seoul.crew, position=_position(seoul.a))
    page = context.new_page()
    switch = SocketSwitch(page)
    page.goto(f"{system.server.http_url}/crew/")
    page.wait_for_function(_HAS_BEDS)
    page.get_by_test_id("position-locate").click()
    before = page.evaluate("() => window.weerLive.lastSeq['beds.all']")

    switch.drop()
    indicator = page.get_by_test_id("connection-indicator")
    expect(indicator).not_to_have_attribute("data-status", "live")
    expect(indicator).to_contain_text("재연결")
    new = _change_beds_upstream(system.simulator, seoul.a.hpid)
    switch.sent.clear()
    switch.received.clear()
    switch.restore()

    expect(indicator).to_have_attribute("data-status", "live", timeout=40_000)
    cell = page.get_by_test_id(f"er-row-{seoul.a.hpid}").get_by_test_id("er-general")
    expect(cell).to_have_attribute("data-value", str(new))
    subscribe = next(m for m in switch.sent if '"subscribe"' in m)
    assert f'"beds.all":{before}' in subscribe.replace(" ", ""), subscribe
    replayed = [m for m in switch.received if '"stream":"beds.all"' in m]
    assert not [m for m in replayed if '"type":"snapshot"' in m]  # resumed, not reloaded
    after = page.evaluate("() => window.weerLive.lastSeq['beds.all']")
    assert after > before


def test_a_request_made_while_offline_is_sent_once_on_reconnect(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """Offline, the request waits on the tablet; its first send reaches the server but the
    answer is lost in the tunnel; on reconnect it is sent again with the same key, and
    exactly one reservation per ER exists."""
    page = _crew_page(browser, system, seoul)
    switch = SocketSwitch(page)
    answers_lost: list[bool] = []

    def lose_the_first_answer(route: Route) -> None:
        if not answers_lost:
            route.fetch()  # the server creates the reservations...
            answers_lost.append(True)
            route.abort("internetdisconnected")  # ...and the answer never reaches the tablet
        else:
            route.continue_()

    page.route("**/api/reservations", lose_the_first_answer)
    switch.drop()
    _request_both(page, seoul)
    expect(page.get_by_test_id("queued-request")).to_be_visible()
    switch.restore()
    status_a = page.get_by_test_id(f"request-status-{seoul.a.hpid}")
    expect(status_a).to_have_attribute("data-status", "sent", timeout=40_000)
    assert answers_lost == [True]
    assert Reservation.objects.filter(hospital=seoul.a).count() == 1
    assert Reservation.objects.filter(hospital=seoul.b).count() == 1
    expect(page.get_by_test_id("queued-request")).to_have_count(0)


ACCESS_SECONDS = 10  # the page's first token: long enough to load it on a busy machine


def test_an_expired_token_is_refreshed_without_interruption(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """The access token runs out on an open socket (4401): the page refreshes it and goes on,
    its indicator never leaving "live", and later events still arrive."""
    page = _crew_page(browser, system, seoul, access_lifetime=timedelta(seconds=ACCESS_SECONDS))
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.evaluate(
        """() => {
            window.weerStatuses = [];
            window.weerLive.addEventListener(
                "status", (event) => window.weerStatuses.push(event.detail.status));
        }"""
    )
    first_token = page.evaluate("() => JSON.parse(localStorage.getItem('weer.auth')).access")
    expires_at = jwt.decode(first_token, options={"verify_signature": False})["exp"]
    assert expires_at - time.time() > 1, "the page took the token's whole life to load"
    # Time itself is under test: the token runs out on the open socket.
    time.sleep(expires_at - time.time() + 2)
    new = _change_beds_upstream(system.simulator, seoul.a.hpid)
    cell = page.get_by_test_id(f"er-row-{seoul.a.hpid}").get_by_test_id("er-general")
    expect(cell).to_have_attribute("data-value", str(new))
    assert len(sockets) >= 1, "the server closed the expired socket and the page opened a new one"
    assert page.evaluate("() => JSON.parse(localStorage.getItem('weer.auth')).access") != (
        first_token
    )
    assert page.evaluate("() => window.weerStatuses") == []  # never left "live"
    expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-status", "live")


VIEWPORTS = {
    "tablet-landscape": {"width": 1280, "height": 800},
    "tablet-portrait": {"width": 800, "height": 1280},
    "wall-screen": {"width": 1920, "height": 1080},
}


def test_both_pages_fit_every_screen_with_large_targets(
    browser: Browser, system: System, seoul: Seoul, tmp_path: Path
) -> None:
    """At tablet landscape and portrait and on a wall screen, in Korean, with a request under
    way: nothing is wider than the screen and every target is at least 48 px. The screenshots
    go to $WEER_SCREENSHOTS (docs/screenshots/ holds the committed ones)."""
    folder = screenshot_dir() or tmp_path
    screen = open_page(
        signed_in(browser, seoul.staff_a, viewport=VIEWPORTS["wall-screen"]),
        system.server,
        "/er/",
    )
    crew = _crew_page(browser, system, seoul)
    _request_both(crew, seoul)
    screen.get_by_test_id("alert-acknowledge").click()
    expect(crew.get_by_test_id(f"request-status-{seoul.a.hpid}")).to_have_attribute(
        "data-status", "seen"
    )
    for name, viewport in VIEWPORTS.items():
        for page, role in ((crew, "crew"), (screen, "er")):
            page.set_viewport_size(viewport)  # type: ignore[arg-type]
            page.wait_for_timeout(300)  # let the layout settle before measuring (no event)
            check_layout(page, f"{role}-{name}", folder)


def test_an_unseen_request_re_alerts_and_the_crew_is_told(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """Nobody acknowledges in time: the reminder re-alerts the ER screen (sound again) and the
    crew's tablet says nobody has seen the request yet."""
    screen = open_page(signed_in(browser, seoul.staff_a), system.server, "/er/")
    crew = _crew_page(browser, system, seoul)
    _request_both(crew, seoul)
    expect(screen.get_by_test_id("alert")).to_be_visible()
    screen.get_by_test_id("alert-silence").click()  # silenced is not seen
    later = timezone.now() + timedelta(seconds=settings.RESERVATION_REMIND_AFTER_SECONDS + 1)
    assert reservations_sweep(now=later)["reminded"] == 2
    expect(screen.get_by_test_id("alert-reminder")).to_be_visible()
    assert _sound_playing(screen)
    status_a = crew.get_by_test_id(f"request-status-{seoul.a.hpid}")
    expect(status_a).to_have_attribute("data-status", "unseen")
    expect(status_a.get_by_test_id("request-unseen")).to_be_visible()


# Whether the crew page has kept its last known hospitals and their state in IndexedDB
# (frontend/src/saved-state.js).
_SAVED_BOARD = """() => new Promise((done) => {
    const open = indexedDB.open("weer", 1);
    open.onupgradeneeded = () => open.transaction.abort();  // not there yet: create nothing
    open.onerror = () => done(false);
    open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("state")) return done(false);
        const get = db.transaction("state").objectStore("state").get("crew.board");
        get.onsuccess = () => {
            const saved = get.result;
            db.close();
            done(saved?.hospitals?.length > 0 && saved.status.length > 0);
        };
        get.onerror = () => done(false);
    };
})"""


def test_the_tablet_reopens_offline_with_its_last_values_marked_old(
    browser: Browser, system: System, seoul: Seoul
) -> None:
    """Reloaded in a tunnel, the installed page opens from its service worker's cache with the
    last known values, marked as such, and goes live again when the network returns."""
    page = _crew_page(browser, system, seoul)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    # The page keeps its state every few seconds (and when hidden).
    wait_for(lambda: page.evaluate(_SAVED_BOARD), "the board kept in IndexedDB")
    row = page.get_by_test_id(f"er-row-{seoul.a.hpid}")
    value = row.get_by_test_id("er-general").get_attribute("data-value")
    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_test_id("saved-values-note")).to_be_visible()
    expect(row.get_by_test_id("er-general")).to_have_attribute("data-value", value or "")
    expect(row.get_by_test_id("last-known")).to_be_visible()
    expect(page.get_by_test_id("connection-indicator")).not_to_have_attribute("data-status", "live")
    page.context.set_offline(False)
    expect(page.get_by_test_id("connection-indicator")).to_have_attribute(
        "data-status", "live", timeout=40_000
    )
