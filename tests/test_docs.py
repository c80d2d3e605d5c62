"""The published docs name everything clients can receive."""

import re
from pathlib import Path

from domain import events
from domain.bed_fields import STATUS_VALUE_KINDS
from realtime import close_codes

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_bed_field_is_documented() -> None:
    """docs/api.md lists every status value by the name the API and events use."""
    text = (DOCS / "api.md").read_text()
    missing = [name for name in STATUS_VALUE_KINDS if f"`{name}`" not in text]
    assert not missing, f"undocumented bed fields: {missing}"


def test_protocol_documents_every_close_code_and_error_code() -> None:
    """docs/protocol.md names every close code and every error code the server can send."""
    text = (DOCS / "protocol.md").read_text()
    codes = {v for k, v in vars(close_codes).items() if k.isupper() and isinstance(v, int)}
    assert codes
    undocumented = [code for code in codes if str(code) not in text]
    assert not undocumented, undocumented
    source = (DOCS.parent / "realtime" / "sessions.py").read_text()
    errors = set(re.findall(r'_refuse\(\s*"([a-z_]+)"', source)) | {"unavailable", "token_expired"}
    missing = [code for code in errors if f"`{code}`" not in text]
    assert len(errors) > 5, errors
    assert not missing, missing


def test_protocol_documents_every_stream_and_event_kind() -> None:
    """docs/protocol.md names every stream kind and every event kind domain.events publishes."""
    text = (DOCS / "protocol.md").read_text()
    kinds = [
        value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str) and "." in value and name != "BEDS_ALL"
    ]
    kinds += [action.kind for action in events.ReservationAction]
    streams = [
        f"`{kind}`" if kind in ("metrics", "accounts") else f"`{kind}."
        for kind in events.StreamKind
    ]
    missing = [k for k in kinds if f"`{k}`" not in text] + [s for s in streams if s not in text]
    assert len(kinds) > 10, kinds
    assert not missing, missing
