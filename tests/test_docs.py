"""The published docs name everything clients can receive."""

from pathlib import Path

from domain.bed_fields import STATUS_VALUE_KINDS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_bed_field_is_documented() -> None:
    """docs/api.md lists every status value by the name the API and events use."""
    text = (DOCS / "api.md").read_text()
    missing = [name for name in STATUS_VALUE_KINDS if f"`{name}`" not in text]
    assert not missing, f"undocumented bed fields: {missing}"
