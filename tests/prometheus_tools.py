"""Prometheus's own tools for the tests (tests/test_monitoring.py, tests/test_k8s_manifests.py),
taken out of Debian's prometheus package on first use and kept in var/tools/<name>-<version>.
The package is not installed: it would enable a Prometheus server on :9090."""

import functools
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


@functools.cache
def prometheus_tool(name: str) -> Path:
    """``promtool`` or ``prometheus`` (the package's ``/usr/bin/<name>``)."""
    cached = sorted((ROOT / "var" / "tools").glob(f"{name}-*"))
    if cached:
        return cached[-1]
    apt_get, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt_get is None or dpkg_deb is None:
        pytest.fail(f"{name} comes from Debian's prometheus package: no apt-get/dpkg-deb here")
    with tempfile.TemporaryDirectory() as scratch:
        download = [apt_get, "-qq", "-o", "APT::Sandbox::User=root", "download", "prometheus"]
        if subprocess.run(download, cwd=scratch, capture_output=True, check=False).returncode:
            subprocess.run([apt_get, "update", "-qq"], capture_output=True, check=True)
            subprocess.run(download, cwd=scratch, capture_output=True, check=True)
        (deb,) = Path(scratch).glob("prometheus_*.deb")
        files = subprocess.run(
            [dpkg_deb, "--fsys-tarfile", str(deb)], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(files)) as archive:
            member = archive.extractfile(f"./usr/bin/{name}")
            assert member is not None
            binary = member.read()
    version = deb.name.split("_")[1].split("+")[0]
    path = ROOT / "var" / "tools" / f"{name}-{version}"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(path)
    return path
