"""The server side of the pages: log-in and sign-up forms, the shells of the crew and ER pages,
the service worker and the web app manifest (the console is in ``frontend.console``).

The crew and ER pages hold no server session: logging in hands the browser a token pair (the
same as ``POST /api/auth/token``), which the pages keep in ``localStorage["weer.auth"]`` and
send to the API and the websocket. (It also starts a session, for the console's server-side
guard.) Every page carries a Content-Security-Policy whose nonce lets only the
page's own inline scripts run.
"""

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import login as session_login
from django.contrib.auth import logout as session_logout
from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotFound
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from domain.errors import ApplicationError, Conflict, ErrorCode, ValidationFailed
from domain.models import Role
from domain.selectors.hospitals import hospital_search
from domain.services.tokens import access_token_authenticate, token_pair_for_credentials
from domain.services.users import user_sign_up
from frontend.forms import LoginForm, SignUpForm

SERVICE_WORKER = "frontend/dist/sw.js"
THEME_COLOUR = "#b91c1c"
HOME_BY_ROLE = {Role.AMBULANCE: "/crew/", Role.HOSPITAL: "/er/", Role.ADMIN: "/console/"}


def _login_messages() -> dict[str, str]:
    """What the log-in page says for each refusal of ``token_pair_for_credentials``."""
    return {
        ErrorCode.INVALID_CREDENTIALS: _("아이디 또는 비밀번호가 올바르지 않습니다."),
        ErrorCode.ACCOUNT_PENDING: _(
            "가입 승인을 기다리고 있습니다. 관리자가 승인하면 로그인할 수 있습니다."
        ),
        ErrorCode.ACCOUNT_REJECTED: _("가입이 거절된 계정입니다. 관리자에게 문의하세요."),
        ErrorCode.ACCOUNT_DISABLED: _("사용이 중지된 계정입니다. 관리자에게 문의하세요."),
    }


def content_security_policy(request: HttpRequest, nonce: str) -> str:
    """The pages' policy: everything from this site only; inline scripts only with ``nonce``;
    inline styles allowed (Leaflet positions the map with them); map tiles from
    ``MAP_TILE_URL``'s origin; the websocket on this host."""
    tiles = ""
    if settings.MAP_TILE_URL:
        parts = urlsplit(settings.MAP_TILE_URL.replace("{s}", "*"))
        tiles = f" {parts.scheme}://{parts.netloc}"
    socket = f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{tiles}",
            "media-src 'self' data: blob:",
            f"connect-src 'self' {socket}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """Render a page with its config (``weer-config``) and a fresh CSP nonce."""
    nonce = secrets.token_urlsafe(18)
    response = render(
        request,
        template,
        {"page_config": page_config(), "csp_nonce": nonce, **(context or {})},
        status=status,
    )
    response["Content-Security-Policy"] = content_security_policy(request, nonce)
    return response


def page_config() -> dict[str, Any]:
    """What the pages' scripts read from ``#weer-config``."""
    return {
        "ws_url": "/ws/",
        "map_tile_url": settings.MAP_TILE_URL or None,
        "map_tile_attribution": settings.MAP_TILE_ATTRIBUTION or None,
        "lang": get_language(),
        "static": f"{settings.STATIC_URL}frontend/dist/",
    }


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return page(request, "frontend/index.html")


def next_page(role: str, requested: str | None, request: HttpRequest) -> str:
    """Where a user goes after logging in: the page of their role, or the page they were sent
    away from (``?next=``) when it is on this site and within that page."""
    home = HOME_BY_ROLE.get(Role(role), "/")
    if (
        requested
        and requested.startswith(home)
        and url_has_allowed_host_and_scheme(requested, {request.get_host()})
    ):
        return requested
    return home


@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """The log-in form. Success renders ``signed_in.html``, which stores the token pair in the
    browser and goes on to the user's page; a refusal re-renders the form saying why."""
    if request.method == "GET":
        form = LoginForm(initial={"next": request.GET.get("next", "")})
        return page(request, "frontend/login.html", {"form": form})
    form = LoginForm(request.POST)
    if not form.is_valid():
        return page(request, "frontend/login.html", {"form": form}, status=400)
    try:
        pair = token_pair_for_credentials(
            username=form.cleaned_data["username"], password=form.cleaned_data["password"]
        )
    except ApplicationError as exc:
        form.add_error(None, _login_messages().get(exc.code, exc.message))
        status = 401 if exc.code == ErrorCode.INVALID_CREDENTIALS else 403
        return page(request, "frontend/login.html", {"form": form}, status=status)
    user = access_token_authenticate(token=pair.access).user
    # The console's pages are guarded on the server, so the login also starts a session
    # (the other pages only use the tokens). It ends with the logout page, a password change
    # (Django checks the session against the password hash) or a disabled account.
    session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    auth = {
        "access": pair.access,
        "refresh": pair.refresh,
        "role": user.role,
        "hpid": user.hospital.hpid if user.hospital else None,
        "user_id": user.pk,
        "next": next_page(user.role, form.cleaned_data["next"], request),
    }
    return page(request, "frontend/signed_in.html", {"auth": auth})


@never_cache
@require_GET
def logout(request: HttpRequest) -> HttpResponse:
    """Ends the session and forgets the stored tokens (and the pages' cached state) in the
    browser, whose script also ends the token login on the server."""
    session_logout(request)
    return page(request, "frontend/logout.html")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up for crews and hospital staff: creates a pending account (an administrator
    approves it) and says so."""
    if request.method == "GET":
        return page(request, "frontend/signup.html", {"form": SignUpForm(), **_hospitals()})
    form = SignUpForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            user = user_sign_up(
                username=data["username"],
                password=data["password"],
                role=data["role"],
                hospital_hpid=form.chosen_hospital.hpid if form.chosen_hospital else None,
                agency=data["agency"],
                crew_name=data["crew_name"],
                phone=data["phone"],
            )
        except (ValidationFailed, Conflict) as exc:
            _add_service_errors(form, exc)
        else:
            return page(request, "frontend/signup.html", {"created": user}, status=201)
    return page(request, "frontend/signup.html", {"form": form, **_hospitals()}, status=400)


def _add_service_errors(form: SignUpForm, exc: ApplicationError) -> None:
    """What ``user_sign_up`` refused that the form's own checks did not catch, next to the
    field it names (or above the form)."""
    if exc.code == ErrorCode.USERNAME_TAKEN:
        form.add_error("username", _("이미 사용 중인 아이디입니다."))
        return
    if not exc.fields:
        form.add_error(None, exc.message)
    for field, problems in exc.fields.items():
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)


def _hospitals() -> dict[str, Any]:
    """Suggestions for the hospital field: every hospital as "name (hpid)"."""
    hits = hospital_search()
    return {"hospital_options": [f"{h.hospital.name} ({h.hospital.hpid})" for h in hits]}


@require_GET
def crew(request: HttpRequest) -> HttpResponse:
    """The ambulance tablet's shell; its script reads the stored tokens (or goes to log in)."""
    return page(request, "frontend/crew.html")


@require_GET
def er(request: HttpRequest) -> HttpResponse:
    """The ER screen's shell; its script reads the stored tokens (or goes to log in)."""
    return page(request, "frontend/er.html")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponseBase:
    """The built service worker, served from the site root so that its scope is the whole
    site."""
    path = finders.find(SERVICE_WORKER)
    if not isinstance(path, str):
        return HttpResponseNotFound(
            f"The service worker is not built ({SERVICE_WORKER}): run `npm run build`.\n",
            content_type="text/plain; charset=utf-8",
        )
    response = FileResponse(open(path, "rb"), content_type="application/javascript")  # noqa: SIM115
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"  # browsers must see a new version at once
    return response


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    """The web app manifest that makes the pages installable."""
    body = {
        "name": "WeER 응급실 병상",
        "short_name": "WeER",
        "description": "구급대와 응급실을 잇는 실시간 응급실 병상 정보",
        "lang": "ko",
        "start_url": "/crew/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOUR,
        "icons": [
            {
                "src": static(f"frontend/icons/icon-{size}.png"),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for size in (192, 512)
        ]
        + [
            {
                "src": static("frontend/icons/icon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            }
        ],
    }
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), content_type="application/manifest+json"
    )
