"""The layout keeps its promises: the packages depend on each other one way, and the server
carries no load-test code."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PACKAGES = ("project", "domain", "realtime", "ingestion", "frontend", "loadtest")
SERVER_PACKAGES = ("domain", "realtime", "ingestion")


def _imports_between_packages() -> dict[str, set[str]]:
    """package → the other top-level packages its modules import (anywhere in a module,
    functions included), read from the source."""
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                graph[package] |= {n.split(".")[0] for n in names} & set(PACKAGES) - {package}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for successor in sorted(graph[node]):
            found = visit(successor, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


def test_no_import_cycle_between_top_level_packages() -> None:
    """Dependencies point one way: project composes; realtime and ingestion build on the
    domain; the domain imports neither; nothing in the server imports the load tester."""
    graph = _imports_between_packages()
    assert _cycle(graph) is None, _cycle(graph)
    assert graph["domain"] == set()
    assert graph["realtime"] == {"domain"}
    assert graph["ingestion"] == {"domain"}
    assert all("loadtest" not in graph[p] for p in ("project", *SERVER_PACKAGES))


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-package loop is reported as one."""
    assert _cycle({"a": {"b"}, "b": {"a"}, "c": set()}) == ["a", "b", "a"]


_IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import django
django.setup()
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(sorted({m.split(".")[0] for m in sys.modules} & {"loadtest", "websockets", "uvloop"}))
"""


def test_the_server_imports_no_load_test_code() -> None:
    """Importing every module of domain, realtime and ingestion loads neither the load tester
    nor its client libraries (an optional extra the production image does not install)."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING, *SERVER_PACKAGES],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
