"""The demo's secrets: random keys generated once per checkout into a private file, and reused.

``bin/start`` runs the demo with ``DEMO=true``; every process it starts (the web server, the
Celery worker and beat, ``manage.py`` commands such as ``issue_tokens``) then signs and checks
with the same keys, read from ``var/secrets.env``, without anyone having to set them. The
source holds no key at all: a constant demo key is a key everyone has (it signed tokens for any
user of any demo reachable on the network). Outside the demo the keys come from the
environment only (``project.settings``).
"""

import contextlib
import os
import secrets
from pathlib import Path

DEMO_SECRET_NAMES = ("SECRET_KEY", "JWT_SIGNING_KEY", "METRICS_TOKEN")
METRICS_TOKEN_FILE_NAME = "metrics-token"  # noqa: S105 (a file name, not a password)


def _parse(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Write ``text`` to ``path`` (mode 0600) in one step: readers see the whole file or none.
    Without ``replace``, a file another process wrote first wins (False: ours was dropped)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)  # fails if it exists: two first starts agree on one file
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def demo_secrets(path: Path) -> dict[str, str]:
    """The demo's ``SECRET_KEY``, ``JWT_SIGNING_KEY`` and ``METRICS_TOKEN`` from ``path``,
    generated (``secrets.token_urlsafe``, 384 bits each) and written there with mode 0600 the
    first time, read back every time after. Any name the file lacks is added. The metrics token
    is also written alone to ``metrics-token`` beside it, the file a Prometheus scraper's
    ``credentials_file`` (or ``weer-loadtest --metrics-token-file``) reads.

    Raises ``OSError`` if the directory cannot be created or written (the demo cannot run
    without its keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = _parse(path.read_text()) if path.exists() else {}
    missing = [name for name in DEMO_SECRET_NAMES if not existing.get(name)]
    if missing:
        values = {**existing, **{name: secrets.token_urlsafe(48) for name in missing}}
        text = "".join(f"{name}={value}\n" for name, value in values.items())
        if not _write_private(path, text, replace=bool(existing)):
            return demo_secrets(path)  # another process generated them first: use theirs
        existing = values
    token_file = path.with_name(METRICS_TOKEN_FILE_NAME)
    token = existing["METRICS_TOKEN"]
    if not token_file.exists() or token_file.read_text().strip() != token:
        _write_private(token_file, f"{token}\n", replace=True)
    return existing
