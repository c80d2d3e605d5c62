"""The pages in Debian's Chromium (Playwright), against the real system the test run starts.

``system`` (in the browser test modules) starts the upstream simulator, a Celery worker polling
it, and ``weer-serve``; ``Seoul`` is one test's data: Seoul's hospitals as the upstream reports
them, loaded through the real ingestion path. Pages are opened signed in (the pair the login
page would store, put in ``localStorage["weer.auth"]`` before the page loads) in Korean, in
Seoul's time zone, with sound allowed to play without a gesture (an ER wall screen is set up
that way; the "enable sound" path is the exception, not the rule).
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from django.conf import settings
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, sync_playwright

from domain.models import Hospital, RegionFreshness, User
from domain.services.tokens import access_token_issue, token_pair_issue
from ingestion import polls
from ingestion.simulator import SimulatorServer
from ingestion.tasks import poll_region_beds
from tests.conftest import DaphneServer, server_env
from tests.polling import wait_for

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # The machine's network is closed: no background connections to Google's hosts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
SEOUL = "11"
TABLET = {"width": 1280, "height": 800}


@dataclass(frozen=True)
class System:
    server: DaphneServer
    simulator: SimulatorServer


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (bin/test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def collect_static() -> None:
    """The built pages into STATIC_ROOT, hashed, as a production server (DEBUG off) serves them."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        env=server_env(),
        cwd=settings.BASE_DIR,
        check=True,
    )


def signed_in(
    browser: Browser,
    user: User,
    *,
    viewport: dict[str, int] = TABLET,
    access_lifetime: timedelta | None = None,
    position: tuple[float, float] | None = None,
) -> BrowserContext:
    """A browser context in which ``user`` is signed in, as after the login page."""
    pair = token_pair_issue(user=user)
    access = (
        pair.access
        if access_lifetime is None
        else access_token_issue(user=user, lifetime=access_lifetime)
    )
    stored = {
        "access": access,
        "refresh": pair.refresh,
        "role": user.role,
        "hpid": user.hospital.hpid if user.hospital else None,
        "user_id": user.pk,
    }
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        geolocation=None
        if position is None
        else {"latitude": position[0], "longitude": position[1]},
        permissions=["geolocation"] if position is not None else [],
    )
    context.add_init_script(
        f"if (!localStorage.getItem('weer.auth')) "
        f"localStorage.setItem('weer.auth', {json.dumps(json.dumps(stored))});"
    )
    return context


def open_page(context: BrowserContext, server: DaphneServer, path: str) -> Page:
    """Open ``path`` and wait until its live connection is up."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.http_url}{path}")
    page.wait_for_function("() => window.weerLive && window.weerLive.status === 'live'")
    assert errors == [], errors
    return page


def control(simulator: SimulatorServer, method: str, path: str, body: object = None) -> Any:
    """A call to the simulator's control API."""
    data = None if body is None else json.dumps(body).encode()
    request = Request(
        f"{simulator.base_url}/_control/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def poll_through_the_worker(region: str = SEOUL) -> None:
    """Have the Celery worker poll a region's beds now, and return once it has."""
    before = _last_attempt(region)
    poll_region_beds.delay(region)
    wait_for(lambda: _last_attempt(region) not in (None, before), "the worker's poll", timeout=20)


def _last_attempt(region: str) -> object:
    return (
        RegionFreshness.objects.filter(region_code=region)
        .values_list("last_attempt_at", flat=True)
        .first()
    )


def load_seoul() -> list[Hospital]:
    """Seoul's hospitals through the real ingestion path, in this process: the institution list
    (names, coordinates), then the region's beds; those with a position and ER beds known."""
    with polls.ingestion_tools() as tools:
        polls.sync_institutions(tools)
        polls.poll_region_beds(tools, SEOUL)
    return list(
        Hospital.objects.filter(
            region_code=SEOUL, latitude__isnull=False, er_status__er_general__isnull=False
        ).order_by("hpid")
    )


def screenshot_dir() -> Path | None:
    """Where the layout test keeps its screenshots: ``WEER_SCREENSHOTS`` when set."""
    folder = os.environ.get("WEER_SCREENSHOTS")
    return Path(folder) if folder else None


# Everything a finger or a pointer acts on. Map markers are left out: every one of them is also a
# row of the list, whose controls are the ones meant for gloved fingers.
_TARGETS = "button, select, input:not([type=hidden]), textarea, a.button, [role=button]"
_TOO_SMALL = f"""() => [...document.querySelectorAll("{_TARGETS}")]
    .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== "hidden")
    .filter((e) => !e.closest(".leaflet-control-attribution, .leaflet-marker-pane"))
    .map((e) => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.height < 48 || (r.width < 48 && e.type !== "checkbox"))
    .map(([e, r]) => [e.tagName, e.dataset.testid || e.textContent.trim().slice(0, 20),
                      Math.round(r.width), Math.round(r.height)].join(" "))"""


def check_layout(page: Page, name: str, folder: Path | None) -> None:
    """Nothing wider than the screen, every target at least 48 px; a screenshot into ``folder``."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"{name}: {overflow} px wider than the screen"
    assert page.evaluate(_TOO_SMALL) == [], name
    if folder is not None:
        page.screenshot(path=folder / f"{name}.png")


class SocketSwitch:
    """Routes the page's websocket through the test, which can drop it and keep it down."""

    def __init__(self, page: Page) -> None:
        self.down = False
        self.routes: list[WebSocketRoute] = []
        self.sent: list[str] = []  # what the page sent to the server, in order
        # What the server sent to the page, in order (compressed snapshots inflated).
        self.received: list[str] = []
        page.route_web_socket("**/ws/**", self._connect)

    def _connect(self, route: WebSocketRoute) -> None:
        if self.down:  # the tunnel: the handshake gets nowhere
            route.close(code=1001, reason="tunnel")
            return
        server = route.connect_to_server()
        route.on_message(lambda message: self._to_server(server, message))
        server.on_message(lambda message: self._to_page(route, message))
        self.routes.append(route)

    def _to_server(self, server: WebSocketRoute, message: str | bytes) -> None:
        self.sent.append(message if isinstance(message, str) else message.decode())
        server.send(message)

    def _to_page(self, route: WebSocketRoute, message: str | bytes) -> None:
        # A binary frame is a compressed snapshot (docs/protocol.md §1): passed on as it came.
        self.received.append(
            message if isinstance(message, str) else zlib.decompress(message).decode()
        )
        route.send(message)

    def drop(self) -> None:
        """Cut the current socket and refuse new ones until ``restore``."""
        self.down = True
        for route in self.routes:
            route.close(code=1001, reason="tunnel")
        self.routes.clear()

    def restore(self) -> None:
        self.down = False
