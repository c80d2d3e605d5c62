"""The system ``bin/start`` runs gives nothing away to whoever can reach it: a real server
process in the environment ``bin/start`` gives it (``demo_settings`` in ``bin/lib.sh``), on the
test database and Redis, answers a forged ``Host`` with a plain 400 and an unknown URL with a
plain 404 (no settings, no traceback, no URL patterns), listens on loopback unless told
otherwise, signs with keys generated for the checkout (never a constant in the source), and
still serves the built pages."""

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from django.conf import settings

from tests.conftest import DaphneServer, run_server, server_env
from tests.factories import UserFactory

ROOT = Path(settings.BASE_DIR)
BASH = shutil.which("bash") or "/bin/bash"
EVERYWHERE = "0.0.0.0"  # noqa: S104 (what WEB_BIND may ask for; nothing binds here)
# The key the demo used to sign with (and Django's SECRET_KEY), a constant in project/settings.py
# that Django's debug page showed to anyone.
OLD_DEMO_KEY = "demo-only-not-a-secret-never-use-in-production"
LEAKS = re.compile(
    r"SECRET_KEY|JWT_SIGNING_KEY|Traceback|DATABASES|urlpatterns|URLconf|settings\.py"
)

pytestmark = pytest.mark.django_db(transaction=True)


def demo_environment(secrets_file: Path) -> dict[str, str]:
    """What ``bin/start`` exports before it starts the system, over the test database and
    Redis, with no secret of the test run's and the demo's secrets in ``secrets_file``."""
    base = {
        k: v
        for k, v in server_env().items()
        if k not in {"DEBUG", "DEMO", "SECRET_KEY", "JWT_SIGNING_KEY", "METRICS_TOKEN", "WEB_BIND"}
    }
    base["DEMO_SECRETS_FILE"] = str(secrets_file)
    dump = subprocess.run(
        [BASH, "-c", "source bin/lib.sh && demo_settings && env -0"],
        env=base,
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return dict(line.split("=", 1) for line in dump.split("\0") if "=" in line)


@pytest.fixture(scope="module")
def demo_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-var") / "secrets.env"


@pytest.fixture(scope="module")
def demo_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path
) -> Iterator[DaphneServer]:
    """weer-serve, as the Procfile's web line runs it, in bin/start's environment."""
    env = demo_environment(demo_secrets)
    with run_server(
        tmp_path_factory.mktemp("demo"),
        "-m",
        "realtime.serving.serve",
        "--processes",
        "1",
        whole_env=env,
    ) as server:
        yield server


def test_a_forged_host_gets_a_plain_400(demo_server: DaphneServer) -> None:
    """``Host: evil.example`` is a short plain 400 with no settings or traceback in it."""
    for path in ["/healthz", "/", "/api/regions", "/nope"]:
        response = httpx.get(
            f"{demo_server.http_url}{path}", headers={"Host": "evil.example"}, timeout=10
        )
        assert response.status_code == 400, (path, response.status_code)
        assert not LEAKS.search(response.text), (path, response.text[:2000])
        assert len(response.content) < 500, (path, response.text[:2000])
        if path.startswith("/api/"):
            assert response.json()["error"]["code"] == "bad_request"


def test_an_unknown_url_lists_no_url_patterns(demo_server: DaphneServer) -> None:
    """An unknown URL is a short 404, not Django's page that lists every URL pattern."""
    for path in ["/nope", "/static/nope.js", "/admin/nope/"]:
        response = httpx.get(f"{demo_server.http_url}{path}", timeout=10)
        assert response.status_code in {404, 302}, (path, response.status_code)
        assert not LEAKS.search(response.text), (path, response.text[:2000])
        assert "api/" not in response.text, (path, response.text[:2000])


def test_a_token_signed_with_the_old_constant_gets_nothing(demo_server: DaphneServer) -> None:
    """The key in the source signs nothing the demo accepts: no user list, no reservations."""
    admin = UserFactory(role="admin")
    now = datetime.now(UTC)
    forged = jwt.encode(
        {
            "sub": str(admin.pk),
            "role": "admin",
            "hospital": None,
            "type": "access",
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "jti": "f" * 32,
        },
        OLD_DEMO_KEY,
        algorithm="HS256",
    )
    for path in ["/api/admin/users", "/api/reservations"]:
        response = httpx.get(
            f"{demo_server.http_url}{path}",
            headers={"Authorization": f"Bearer {forged}"},
            timeout=10,
        )
        assert response.status_code == 401, (path, response.text[:500])


def test_the_demo_serves_its_built_pages(demo_server: DaphneServer) -> None:
    """With Django's debug mode off, the log-in page and the pages' bundle are still served."""
    for page in ["/login/", "/crew/", "/er/"]:
        response = httpx.get(f"{demo_server.http_url}{page}", timeout=10)
        assert response.status_code == 200, page
        linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text)
        assert any(path.endswith(".js") for path in linked) or page == "/login/", linked
        for path in linked:
            served = httpx.get(f"{demo_server.http_url}{path}", timeout=10)
            assert served.status_code == 200, path


def test_demo_secrets_are_generated_once_private_and_reused(demo_secrets: Path) -> None:
    """The demo's keys come from a 0600 file generated on first use and read back after; the
    metrics token has a file of its own, for a scraper's ``credentials_file``."""
    env = demo_environment(demo_secrets)
    show = "from django.conf import settings as s; "
    show += "print(s.SECRET_KEY, s.JWT_SIGNING_KEY, s.METRICS_TOKEN)"

    def keys() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {show}"],
            env={**env, "DJANGO_SETTINGS_MODULE": "project.settings"},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()

    first = keys()
    assert keys() == first
    secret_key, signing_key, metrics_token = first
    assert OLD_DEMO_KEY not in first
    assert min(len(secret_key), len(signing_key), len(metrics_token)) >= 40
    assert len(set(first)) == 3
    text = demo_secrets.read_text()
    assert f"JWT_SIGNING_KEY={signing_key}" in text
    token_file = demo_secrets.with_name("metrics-token")
    assert token_file.read_text().strip() == metrics_token
    for path in (demo_secrets, token_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_without_demo_the_secrets_are_required(tmp_path: Path) -> None:
    """Outside the demo no secret has a default: a process without them does not start."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "DEMO", "SECRET_KEY", "JWT_SIGNING_KEY"}
    }
    for missing in ("SECRET_KEY", "JWT_SIGNING_KEY"):
        present = {"SECRET_KEY": "s" * 50, "JWT_SIGNING_KEY": "j" * 50}
        del present[missing]
        run = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            env={
                **env,
                **present,
                "DEBUG": "true",
                "DJANGO_SETTINGS_MODULE": "project.settings",
                "DEMO_SECRETS_FILE": str(tmp_path / "secrets.env"),
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert run.returncode != 0
        assert missing in run.stderr
    assert not (tmp_path / "secrets.env").exists()


def test_the_demo_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    """The Procfile's web server binds 127.0.0.1 in bin/start's environment, WEB_BIND else."""
    [web] = [
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    ]
    command = web.removeprefix("web:").strip()
    for extra, bind in [({}, "127.0.0.1"), ({"WEB_BIND": EVERYWHERE}, EVERYWHERE)]:
        env = {**demo_environment(tmp_path / "secrets.env"), **extra}
        expanded = subprocess.run(
            [BASH, "-c", f"echo {command}"], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        assert expanded[expanded.index("-b") + 1] == bind, expanded
