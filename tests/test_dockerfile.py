"""The production image's Dockerfile: multi-stage, no compiler in the stage that ships, a
non-root user, the pages built in a node stage; mysqlclient's run-time needs checked against
the machine's own build; and ``docker build`` itself where a Docker engine answers."""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
# What builds code: none of it may be in the image that runs.
BUILD_TOOLS = {
    "gcc",
    "g++",
    "cc",
    "clang",
    "make",
    "build-essential",
    "libc6-dev",
    "libmariadb-dev",
    "libmariadb-dev-compat",
    "libmysqlclient-dev",
    "pkg-config",
    "python3-dev",
}
# Libraries the python:3.11-slim image already has (its interpreter links them).
BASE_IMAGE_PACKAGES = {"libc6", "libssl3", "zlib1g"}
DOCKER = shutil.which("docker")
DPKG = shutil.which("dpkg")
LDD = shutil.which("ldd")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def apt_installed(self) -> set[str]:
        """The packages its RUN lines ``apt-get install``."""
        packages: set[str] = set()
        for run in self.args("RUN"):
            lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            command: list[str] = []
            for word in [*lexer, ";"]:
                if word not in ("&&", "||", ";", "|"):
                    command.append(word)
                    continue
                if command[:2] == ["apt-get", "install"]:
                    packages |= {w for w in command[2:] if not w.startswith("-")}
                command = []
        return packages


def stages() -> list[Stage]:
    """The Dockerfile's stages, each with its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, *rest = args.split()
            found.append(Stage(base, rest[1] if rest[:1] == ["AS"] else None))
        else:
            assert found, f"{keyword} before any FROM"
            found[-1].instructions.append((keyword, " ".join(args.split())))
    return found


def test_the_image_that_ships_has_no_compiler() -> None:
    """The last stage installs no compiler, headers or build tool, builds nothing with pip and
    takes from the build stage only the installed virtualenv."""
    *builders, runtime = stages()
    assert runtime.base.startswith("python:3.11-slim")
    assert not runtime.apt_installed() & BUILD_TOOLS, runtime.apt_installed()
    assert runtime.apt_installed() == {"libmariadb3"}
    assert not [run for run in runtime.args("RUN") if re.search(r"\bpip\b", run)]
    copied = [args for args in runtime.args("COPY") if args.startswith("--from=")]
    assert copied == [
        "--from=build /opt/weer /opt/weer",
        "--from=pages /build/frontend/static/frontend/dist frontend/static/frontend/dist",
    ]
    build = next(stage for stage in builders if stage.name == "build")
    assert build.apt_installed() & BUILD_TOOLS  # the compiling happens there instead
    assert any("pip wheel" in run and "-c constraints.txt" in run for run in build.args("RUN")), (
        "the dependencies' wheels are built with the pinned versions"
    )


def test_the_image_runs_as_the_manifests_non_root_user() -> None:
    """The last instruction that sets a user sets UID 10001, after every RUN, and the
    Kubernetes pods run as that same UID."""
    runtime = stages()[-1]
    keywords = [key for key, _ in runtime.instructions]
    users = runtime.args("USER")
    assert users == ["10001:10001"]
    assert keywords.index("USER") > max(i for i, key in enumerate(keywords) if key == "RUN")
    web = yaml.safe_load((ROOT / "k8s" / "base" / "web-deployment.yaml").read_text())
    pod = web["spec"]["template"]["spec"]["securityContext"]
    assert f"{pod['runAsUser']}:{pod['runAsGroup']}" == users[0]


def test_the_pages_are_built_in_a_node_stage() -> None:
    """A node stage installs from the lockfile and builds the pages; the runtime takes the
    bundle from it (the build context leaves any local bundle out)."""
    pages = next(stage for stage in stages() if stage.name == "pages")
    assert pages.base.startswith("node:20")
    assert pages.args("RUN") == ["npm ci --no-audit --no-fund", "npm run build"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/static/frontend/dist" in ignored


def test_the_build_context_leaves_out_local_state() -> None:
    """.dockerignore keeps git, virtualenvs, node_modules, var/ and .env out of the context,
    and leaves in everything the Dockerfile copies from it."""
    ignored = {line for line in (ROOT / ".dockerignore").read_text().split() if line[0] != "#"}
    assert {".git", ".venv", "node_modules", "var", ".env"} <= ignored
    for stage in stages():
        for args in stage.args("COPY"):
            if not args.startswith("--from="):
                *sources, _ = args.split()
                assert not set(sources) & ignored, sources
                assert all((ROOT / source).exists() for source in sources), sources


def _package_of(library: str) -> str:
    """The Debian package that holds a library file (merged /usr: try both paths)."""
    real = os.path.realpath(library)
    for path in dict.fromkeys([real, real.removeprefix("/usr"), "/usr" + real, library]):
        found = subprocess.run([str(DPKG), "-S", path], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return found.stdout.split(":")[0]
    raise AssertionError(f"no Debian package holds {library}")


@pytest.mark.skipif(DPKG is None or LDD is None, reason="not a Debian machine (no dpkg, ldd)")
def test_mysqlclient_needs_only_libmariadb3_at_run_time() -> None:
    """mysqlclient, compiled here on Debian 12 as the build stage compiles it, links only
    libraries of libmariadb3 and of packages the slim image already has."""
    spec = importlib.util.find_spec("MySQLdb._mysql")  # the compiled part of mysqlclient
    assert spec is not None
    assert spec.origin is not None
    linked = subprocess.run(
        [str(LDD), spec.origin], capture_output=True, text=True, check=True
    ).stdout
    libraries = re.findall(r"=> (/\S+)", linked)
    assert any("libmariadb.so" in library for library in libraries), linked
    packages = {_package_of(library).removesuffix(":amd64") for library in libraries}
    assert packages - BASE_IMAGE_PACKAGES == {"libmariadb3"}, packages


def _docker_engine() -> str | None:
    """Why no Docker engine can build here, or None when one answers."""
    if DOCKER is None:
        return "no docker command"
    info = subprocess.run(
        [DOCKER, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if info.returncode != 0 or not info.stdout.strip():
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers (docker info: {reason})"
    return None


def test_docker_build() -> None:
    """`docker build` succeeds, and the image runs as UID 10001 with no compiler, mysqlclient
    importable, on a read-only root filesystem (only /tmp writable)."""
    reason = _docker_engine()
    if reason is not None:
        pytest.skip(f"docker build not run: {reason}; the static checks above still ran")
    assert DOCKER is not None
    tag = f"weer-dockerfile-test:{os.getpid()}"
    built = subprocess.run(
        [DOCKER, "build", "--pull", "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    try:
        run = [DOCKER, "run", "--rm", "--read-only", "--tmpfs", "/tmp", tag]  # noqa: S108
        assert subprocess.check_output([*run, "id", "-u"], text=True).strip() == "10001"
        tools = subprocess.run([*run, "sh", "-c", "command -v gcc cc make"], check=False)
        assert tools.returncode != 0, "a compiler or make is in the image"
        check = "import MySQLdb, daphne, django; django.setup(); print('ok')"
        env = [
            *("-e", "DJANGO_SETTINGS_MODULE=project.settings"),
            *("-e", f"SECRET_KEY={'x' * 50}", "-e", f"JWT_SIGNING_KEY={'y' * 50}"),
        ]
        output = subprocess.check_output([*run[:-1], *env, tag, "python", "-c", check], text=True)
        assert output.strip().endswith("ok")
    finally:
        subprocess.run([DOCKER, "image", "rm", "-f", tag], capture_output=True, check=False)
