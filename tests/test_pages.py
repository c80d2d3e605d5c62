"""The server side of the pages on MariaDB through Django's test client: log-in and sign-up,
the language switch, the page shells' config, the service worker, the manifest, and static
files served by WhiteNoise (the API docs' own assets included)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
from pytest_django import Settings

from domain.models import Approval, Role, User
from domain.services.tokens import access_token_authenticate
from tests.factories import PASSWORD, HospitalFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db
Json = dict[str, Any]


def _json_script(response: "Response", element_id: str) -> Json | None:
    """The JSON of a page's ``<script id=... type="application/json">`` (``json_script``)."""
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    return None if found is None else dict(json.loads(found.group(1)))


def _text(response: "Response") -> str:
    return response.content.decode()


def _log_in(api: Client, username: str, password: str = PASSWORD, next_: str = "") -> "Response":
    return api.post("/login/", {"username": username, "password": password, "next": next_})


# -- logging in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "page"),
    [(Role.AMBULANCE, "/crew/"), (Role.HOSPITAL, "/er/"), (Role.ADMIN, "/console/")],
)
def test_login_hands_the_page_its_tokens_and_next_page(api: Client, role: Role, page: str) -> None:
    """A right password: signed_in.html carries a working token pair, the role, hospital and
    user id, and the role's page; its one inline script runs under the page's CSP nonce."""
    hospital = HospitalFactory(hpid="PAGE0001") if role == Role.HOSPITAL else None
    user = UserFactory(role=role, hospital=hospital)
    response = _log_in(api, user.username)
    assert response.status_code == 200, _text(response)
    auth = _json_script(response, "weer-auth")
    assert auth is not None
    assert auth["role"] == role
    assert auth["hpid"] == (hospital.hpid if hospital else None)
    assert auth["user_id"] == user.pk
    assert auth["next"] == page
    assert access_token_authenticate(token=auth["access"]).user == user
    assert auth["refresh"]
    assert 'localStorage.setItem("weer.auth"' in _text(response)
    nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in _text(response)
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("requested", "goes_to"),
    [
        ("/crew/?region=11", "/crew/?region=11"),
        ("/er/", "/crew/"),  # not the crew's page
        ("https://elsewhere.example/crew/", "/crew/"),
        ("//elsewhere.example/crew/", "/crew/"),
    ],
)
def test_login_returns_only_to_the_roles_own_page(
    api: Client, crew_user: User, requested: str, goes_to: str
) -> None:
    """``?next=`` is followed only within the user's page on this site."""
    assert api.get(f"/login/?next={requested}").status_code == 200
    auth = _json_script(_log_in(api, crew_user.username, next_=requested), "weer-auth")
    assert auth is not None
    assert auth["next"] == goes_to


@pytest.mark.parametrize(
    ("approval", "password", "status", "message"),
    [
        (Approval.ACTIVE, "wrong password", 401, "아이디 또는 비밀번호가 올바르지 않습니다."),
        (Approval.PENDING, PASSWORD, 403, "가입 승인을 기다리고 있습니다."),
        (Approval.REJECTED, PASSWORD, 403, "가입이 거절된 계정입니다."),
    ],
)
def test_login_refusals_are_shown_in_the_form_without_tokens(
    api: Client, approval: Approval, password: str, status: int, message: str
) -> None:
    """Wrong password, pending and rejected accounts: the form again, saying why, and no
    token anywhere in the page."""
    user = UserFactory(role=Role.AMBULANCE, approval=approval)
    response = _log_in(api, user.username, password)
    assert response.status_code == status
    text = _text(response)
    assert message in text
    assert 'role="alert"' in text
    assert _json_script(response, "weer-auth") is None
    assert "localStorage.setItem" not in text
    assert f'value="{user.username}"' in text  # the username is kept, the password is not
    assert password not in text


def test_login_form_is_labelled_and_csrf_protected(crew_user: User) -> None:
    """Every field has a label; a post without the CSRF token is refused."""
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/")
    text = _text(page)
    assert 'name="csrfmiddlewaretoken"' in text
    for field in ("id_username", "id_password"):
        assert f'<label for="{field}">' in text
        assert f'id="{field}"' in text
    refused = browser.post("/login/", {"username": crew_user.username, "password": PASSWORD})
    assert refused.status_code == 403


def test_empty_fields_are_named_next_to_the_field(api: Client) -> None:
    """A missing username is reported beside that field, in Korean by default."""
    response = api.post("/login/", {"username": "", "password": "x"})
    assert response.status_code == 400
    text = _text(response)
    errors = re.search(r'<div id="id_username-errors" class="field-errors">(.*?)</div>', text, re.S)
    assert errors is not None
    assert "필수 항목입니다" in errors.group(1)
    assert 'aria-invalid="true"' in text


def test_logout_page_forgets_the_tokens(api: Client) -> None:
    """The log-out page's script removes what the pages stored (tokens, queued requests, the
    last known state) and goes back to log in."""
    text = _text(api.get("/logout/"))
    assert 'key.startsWith("weer.")' in text
    assert 'indexedDB.deleteDatabase("weer")' in text
    assert 'location.replace("/login/")' in text


# -- signing up ------------------------------------------------------------------------------


def _sign_up(api: Client, **fields: str) -> "Response":
    data = {"username": "new-medic", "password": PASSWORD, "password_again": PASSWORD, **fields}
    return api.post("/signup/", data)


def test_sign_up_creates_a_pending_crew_account(api: Client) -> None:
    """A crew's sign-up makes a pending account and says it awaits approval."""
    response = _sign_up(
        api, role="ambulance", agency="서울 중부소방서", crew_name="중부 1", phone="010-0000-0000"
    )
    assert response.status_code == 201, _text(response)
    assert "관리자의 승인을 기다리고 있습니다" in _text(response)
    user = User.objects.get(username="new-medic")
    assert (user.role, user.approval, user.crew_name) == (
        Role.AMBULANCE,
        Approval.PENDING,
        "중부 1",
    )
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    "named_by", ["A1100017", "a1100017", "서울대학교병원 (A1100017)", "서울대학교병원"]
)
def test_hospital_staff_name_their_hospital_by_hpid_or_name(api: Client, named_by: str) -> None:
    """Hospital staff give the hpid, a suggestion's "name (hpid)" or the exact name."""
    hospital = HospitalFactory(hpid="A1100017", name="서울대학교병원")
    HospitalFactory(name="서울대학교병원 어린이병원")
    response = _sign_up(api, role="hospital", hospital=named_by)
    assert response.status_code == 201, _text(response)
    assert User.objects.get(username="new-medic").hospital == hospital


def test_sign_up_page_suggests_hospitals(api: Client) -> None:
    """The hospital field has every hospital as a suggestion."""
    HospitalFactory(hpid="A1100017", name="서울대학교병원")
    text = _text(api.get("/signup/"))
    assert '<option value="서울대학교병원 (A1100017)">' in text
    assert 'list="hospital-options"' in text


def test_an_ambiguous_hospital_name_offers_the_matches(api: Client) -> None:
    """A name several hospitals share lists them to choose from, and creates nothing yet."""
    HospitalFactory(hpid="A0000001", name="한국병원 본원")
    HospitalFactory(hpid="A0000002", name="한국병원 분원")
    response = _sign_up(api, role="hospital", hospital="한국병원")
    assert response.status_code == 400
    text = _text(response)
    assert "여러 병원이 일치합니다" in text
    assert 'value="한국병원 본원 (A0000001)"' in text
    assert 'value="한국병원 분원 (A0000002)"' in text
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"role": "hospital", "hospital": ""}, "hospital", "병원을 입력해야 합니다"),
        ({"role": "hospital", "hospital": "Z9999999"}, "hospital", "이 기관코드의 병원이 없습니다"),
        (
            {"role": "ambulance", "password_again": "something else"},
            "password_again",
            "서로 다릅니다",
        ),
        (
            {"role": "ambulance", "password": "12345678", "password_again": "12345678"},
            "password",
            "비밀번호",
        ),
        ({"role": "admin"}, "role", "올바르게 선택해 주세요"),
    ],
)
def test_sign_up_problems_are_shown_next_to_their_field(
    api: Client, fields: dict[str, str], field: str, message: str
) -> None:
    """Each problem is reported beside the field it concerns; nothing is created."""
    response = _sign_up(api, **fields)
    assert response.status_code == 400
    errors = re.search(
        rf'<div id="id_{field}-errors" class="field-errors">(.*?)</div>', _text(response), re.S
    )
    assert errors is not None
    assert message in errors.group(1), errors.group(1)
    assert not User.objects.exists()


def test_a_taken_username_is_shown_next_to_it(api: Client, crew_user: User) -> None:
    """The domain's username_taken, in the page's words."""
    response = _sign_up(api, role="ambulance", username=crew_user.username.upper())
    assert response.status_code == 400
    assert "이미 사용 중인 아이디입니다." in _text(response)


# -- language --------------------------------------------------------------------------------


def test_korean_by_default_and_english_on_request(api: Client) -> None:
    """Korean first; the language switch (Django's set_language) turns the pages English."""
    korean = api.get("/login/")
    assert '<html lang="ko">' in _text(korean)
    assert "비밀번호" in _text(korean)
    assert '<span aria-hidden="true">✓ </span>한국어' in _text(korean)
    assert re.search(r'value="en"[^>]*>\s*English\s*</button>', _text(korean))  # its own name
    switched = api.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert switched.status_code == 302
    assert switched["Location"] == "/login/"
    english = api.get("/login/")
    text = _text(english)
    assert '<html lang="en">' in text
    assert '<label for="id_password">Password' in text
    assert 'aria-pressed="true" class="current"' in text
    config = _json_script(api.get("/crew/"), "weer-config")
    assert config is not None
    assert config["lang"] == "en"


def test_english_refusals_are_translated(api: Client) -> None:
    """The log-in page's refusals have their English text."""
    api.post("/i18n/setlang/", {"language": "en"})
    user = UserFactory(role=Role.AMBULANCE, approval=Approval.PENDING)
    assert "awaiting approval" in _text(_log_in(api, user.username))


def test_the_compiled_catalogue_holds_every_message(api: Client) -> None:
    """frontend/locale/en's committed .mo translates every msgid of its .po."""
    import gettext

    folder = Path(settings.BASE_DIR) / "frontend" / "locale" / "en" / "LC_MESSAGES"
    po = (folder / "django.po").read_text()
    msgids = [
        "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block)).replace('\\"', '"')
        for block in re.findall(r'^msgid ((?:".*"\n)+)', po, re.M)
    ]
    with (folder / "django.mo").open("rb") as mo:
        catalogue = gettext.GNUTranslations(mo)
    untranslated = [m for m in msgids if m and catalogue.gettext(m) == m]
    assert len(msgids) > 40
    assert not untranslated, untranslated


def test_every_template_string_is_in_the_catalogue() -> None:
    """Each {% translate "…" %} of the templates has an entry in the English catalogue."""
    root = Path(settings.BASE_DIR) / "frontend"
    po = (root / "locale" / "en" / "LC_MESSAGES" / "django.po").read_text()
    known = {
        "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block)).replace('\\"', '"')
        for block in re.findall(r'^msgid ((?:".*"\n)+)', po, re.M)
    }
    used = {
        message
        for template in (root / "templates").rglob("*.html")
        for message in re.findall(r'\{% (?:translate|trans) "([^"]+)"', template.read_text())
    }
    missing = sorted(used - known)
    assert len(used) > 20
    assert not missing, missing


# -- the page shells -------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/crew/", "/er/"])
def test_page_shells_carry_their_config(api: Client, page: str) -> None:
    """The crew and ER shells need no session and hand their script the websocket path, the
    map tiles (none by default), the language and the bundle's location."""
    response = api.get(page)
    assert response.status_code == 200
    assert _json_script(response, "weer-config") == {
        "ws_url": "/ws/",
        "map_tile_url": None,
        "map_tile_attribution": None,
        "lang": "ko",
        "static": "/static/frontend/dist/",
    }
    assert '<link rel="manifest" href="/manifest.webmanifest">' in _text(response)
    assert "connect-src 'self' ws://testserver" in response["Content-Security-Policy"]


def test_a_tile_server_is_passed_on_and_allowed(api: Client, settings: Settings) -> None:
    """With MAP_TILE_URL set, the config carries it and the CSP lets its images in."""
    settings.MAP_TILE_URL = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    settings.MAP_TILE_ATTRIBUTION = "© Example"
    response = api.get("/crew/")
    config = _json_script(response, "weer-config")
    assert config is not None
    assert config["map_tile_url"] == settings.MAP_TILE_URL
    assert config["map_tile_attribution"] == "© Example"
    assert "https://*.tile.example.org" in response["Content-Security-Policy"]


def test_landing_page_points_to_every_page(api: Client) -> None:
    """/ links log-in, sign-up, both pages and the API docs."""
    text = _text(api.get("/"))
    for link in ("/login/", "/signup/", "/crew/", "/er/", "/console/", "/api/docs"):
        assert f'href="{link}"' in text


# -- service worker and manifest -------------------------------------------------------------


def test_service_worker_not_built_is_a_clear_404(api: Client, settings: Settings) -> None:
    """Before ``npm run build`` /sw.js says what is missing."""
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATICFILES_DIRS = []
    response = api.get("/sw.js")
    assert response.status_code == 404
    assert "npm run build" in _text(response)


def test_service_worker_is_served_for_the_whole_site(
    api: Client, settings: Settings, tmp_path: Path
) -> None:
    """The built sw.js is served from the root, as JavaScript, allowed the scope /, and
    revalidated on every load."""
    built = tmp_path / "frontend" / "dist"
    built.mkdir(parents=True)
    (built / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    settings.STATICFILES_DIRS = [tmp_path]
    response = api.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"
    body = response.getvalue()
    response.close()
    assert body == (built / "sw.js").read_bytes()


# -- static files (WhiteNoise, collectstatic) ------------------------------------------------


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``collectstatic --noinput`` into a directory of its own, with the production storage and
    whatever build is (or is not) present."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", "--noinput", verbosity=0)
    return root


@pytest.fixture
def served_static(collected_static: Path) -> Iterator[Client]:
    """A client whose WhiteNoise serves ``collected_static`` (as a deployment would)."""
    with override_settings(STATIC_ROOT=collected_static):
        yield Client()


def _get_static(client: Client, url: str) -> "Response":
    """A static file WhiteNoise serves (read and closed)."""
    response = client.get(url)
    assert response.status_code == 200, url
    response.getvalue()  # reads the file
    response.close()
    return response


def test_collectstatic_works_without_the_pages_build(
    collected_static: Path, served_static: Client
) -> None:
    """Collected with hashed, compressed names; pages render and link them even when the
    pages' bundle was never built."""
    assert (collected_static / "staticfiles.json").exists()
    text = _text(served_static.get("/login/"))
    css = re.search(r'href="(/static/frontend/base\.[0-9a-f]{12}\.css)"', text)
    assert css is not None, text
    _get_static(served_static, css.group(1))
    assert served_static.get("/crew/").status_code == 200


def test_api_docs_load_their_own_assets(served_static: Client) -> None:
    """Every stylesheet and script /api/docs links is served (they used to 404)."""
    page = served_static.get("/api/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', _text(page))
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = _get_static(served_static, asset)
        assert "max-age=315360000" in response["Cache-Control"]  # hashed: cached for good


def test_manifest_makes_the_pages_installable(served_static: Client) -> None:
    """The web app manifest: name, start page, standalone display, theme colour and icons
    that load."""
    response = served_static.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "WeER 응급실 병상"
    assert manifest["start_url"] == "/crew/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#b91c1c"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        image = _get_static(served_static, icon["src"])
        assert image["Content-Type"] == icon["type"]
