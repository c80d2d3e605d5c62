"""The upstream parser and the status diff: pure functions, on the real samples and on
generated edge cases."""

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.bed_fields import BED_FIELDS, STATUS_VALUE_KINDS, Kind
from domain.reports import Value
from domain.status_diff import diff_values
from ingestion.errors import (
    UpstreamMalformed,
    UpstreamQuotaExceeded,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ingestion.parsing import (
    KST,
    RecordRejected,
    parse_acceptance,
    parse_bed_record,
    parse_count,
    parse_flag,
    parse_institution,
    parse_message,
    parse_page,
)

SAMPLES = Path(__file__).parent / "fixtures" / "upstream"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _envelope(items: str, total: int | None = None, code: str = "00") -> bytes:
    count = items.count("<item>") if total is None else total
    return (
        f"<response><header><resultCode>{code}</resultCode><resultMsg>m</resultMsg></header>"
        f"<body><items>{items}</items><numOfRows>10</numOfRows><pageNo>1</pageNo>"
        f"<totalCount>{count}</totalCount></body></response>"
    ).encode()


def test_real_beds_sample() -> None:
    """The real 강남세브란스 response parses to exactly what it says, quirks included."""
    page = parse_page(_sample("getEmrrmRltmUsefulSckbdInfoInqire.xml"))
    assert (page.page_no, page.num_of_rows, page.total_count) == (1, 1, 2)
    [item] = page.items
    report = parse_bed_record(item)
    assert report.hpid == "A1100015"
    assert report.name == "연세대학교의과대학강남세브란스병원"
    assert report.hvidate == datetime(2024, 9, 26, 20, 42, 23, tzinfo=KST)
    values = report.values
    assert values["er_general"] == 6
    assert values["er_general_capacity"] == 15  # the stray "n" after </hvs01> is ignored
    assert values["hyperbaric_oxygen"] is False  # N1
    assert values["ct"] is True
    assert values["ward_neurology"] is True  # hv5 = Y, a mixed field
    assert values["icu_drug"] is True  # hv7 = Y
    assert values["delivery_room"] is True  # hv42 = Y
    assert values["ward_general"] == 235
    assert values["ventilator_pediatric"] is True  # hv10
    assert values["icu_neurology"] is None  # hvcc absent: unknown, not zero
    assert values["emergency_icu_capacity"] is None  # hvs05 absent
    assert set(values) == set(STATUS_VALUE_KINDS)


def test_real_other_samples() -> None:
    """Institution list, basic info and ER messages parse from their real samples."""
    listing = [parse_institution(i) for i in parse_page(_sample("getEgytListInfoInqire.xml")).items]
    assert [i.hpid for i in listing] == ["A0000191", "A0000190", "A0000005"]
    assert listing[2].emergency_class == "G001"
    assert listing[2].latitude == pytest.approx(37.57976260966429)
    [basic] = parse_page(_sample("getEgytBassInfoInqire.xml")).items
    assert parse_institution(basic).er_phone == "02-958-8282"
    [message] = [
        parse_message(i) for i in parse_page(_sample("getEmrrmSrsillDissMsgInqire.xml")).items
    ]
    assert (message.hpid, message.message_type, message.disease_code) == (
        "A0000005",
        "severe",
        "Y0031",
    )
    assert message.message == "장비부족"
    assert message.starts_at == datetime(2017, 3, 10, 17, 31, 33, tzinfo=KST)
    assert message.ends_at is None


def test_gateway_error_envelope() -> None:
    """The data.go.kr gateway's own envelope (code 30) is a rejection, not data."""
    with pytest.raises(UpstreamRejected) as caught:
        parse_page(_sample("OpenAPI_ServiceResponse-error.xml"))
    assert caught.value.code == "30"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("22", UpstreamQuotaExceeded),
        ("30", UpstreamRejected),
        ("99", UpstreamUnavailable),
        ("10", UpstreamRejected),
    ],
)
def test_result_codes(code: str, error: type[Exception]) -> None:
    """A resultCode other than 00 is a typed error; 03 (no data) is an empty page."""
    with pytest.raises(error):
        parse_page(_envelope("", code=code))
    assert parse_page(_envelope("", code="03")).items == []


@pytest.mark.parametrize(
    "body",
    [
        b"<response><header><resultCode>00</result",
        b"not xml",
        b"<html>error</html>",
        b"<response><header><resultCode>00</resultCode></header></response>",
    ],
)
def test_malformed_pages(body: bytes) -> None:
    """Broken, truncated or foreign documents are UpstreamMalformed."""
    with pytest.raises(UpstreamMalformed):
        parse_page(body)


def test_entities_are_never_expanded() -> None:
    """A billion-laughs or external-entity document is refused, not expanded."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><response>&b;</response>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<response>&x;</response>"
    )
    for body in (bomb, external):
        with pytest.raises(UpstreamMalformed):
            parse_page(body)


def test_tags_in_any_order_and_stray_text() -> None:
    """Order of tags and text between elements do not matter."""
    shuffled = _envelope(
        "<item>junk<hvec>-3</hvec> more junk <hpid>A1100015</hpid><hvs01>12</hvs01>"
        "<hvidate>20261124101500</hvidate><hvctayn>N</hvctayn></item>"
    )
    report = parse_bed_record(parse_page(shuffled).items[0])
    assert report.values["er_general"] == -3
    assert report.values["er_general_capacity"] == 12
    assert report.values["ct"] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Y", True),
        ("y", True),
        (" Y ", True),
        ("N", False),
        ("N1", False),
        ("불가능", False),
        ("", None),
        ("-", None),
        ("정보미제공", None),
        ("정보미제공 ", None),
    ],
)
def test_flags(text: str, expected: bool | None) -> None:
    """Every flag spelling the upstream uses."""
    assert parse_flag(text) is expected


def test_counts() -> None:
    """Negative counts stay negative; Y in a plain count is an unknown count; garbage rejects."""
    assert parse_count("-6") == -6
    assert parse_count("0") == 0
    assert parse_count("") is None
    assert parse_count("Y") is None
    assert parse_count("Y", mixed=True) is True
    assert parse_count("12", mixed=True) == 12
    with pytest.raises(RecordRejected):
        parse_count("abc")


@pytest.mark.parametrize(
    "item",
    [
        {"hvidate": "20261124101500", "hvec": "3"},  # no hpid
        {"hpid": "A1100015", "hvec": "3"},  # no hvidate
        {"hpid": "A1100015", "hvidate": "2026-11-24 10:15", "hvec": "3"},
        {"hpid": "A1100015", "hvidate": "20261399101500", "hvec": "3"},  # month 13
        {"hpid": "A1100015", "hvidate": "20261124101500", "hvec": "abc"},
        {"hpid": "A1100015", "hvidate": "20261124101500", "hvctayn": "maybe"},
        {"hpid": "<script>", "hvidate": "20261124101500"},
    ],
)
def test_malformed_records_are_rejected_whole(item: dict[str, str]) -> None:
    """A record with any unusable part is rejected as a whole: no partial data."""
    with pytest.raises(RecordRejected):
        parse_bed_record(item)


def test_acceptance_flags() -> None:
    """All 28 categories; absent is unknown; age texts are kept."""
    item = {
        "hpid": "A1100015",
        "MKioskTy1": "Y",
        "MKioskTy2": "N1",
        "MKioskTy3": "불가능",
        "MKioskTy4": "정보미제공 ",
        "MKioskTy10Msg": "1day",
        "MKioskTy28": "Y",
    }
    report = parse_acceptance(item)
    assert len(report.accepts) == 28
    assert (report.accepts[1], report.accepts[2], report.accepts[3]) == (True, False, False)
    assert report.accepts[4] is None
    assert report.accepts[5] is None
    assert report.age_limits == {10: "1day"}


_bed_values = st.fixed_dictionaries(
    {
        name: st.none() | (st.booleans() if kind is Kind.FLAG else st.integers(-20, 999))
        for name, kind in STATUS_VALUE_KINDS.items()
    }
)


@given(_bed_values, _bed_values)
def test_diff_reports_exactly_the_changed_fields(
    old: dict[str, Value], new: dict[str, Value]
) -> None:
    """Applying a diff's new values to the old state yields the new state, and only fields
    that differ are reported."""
    changes = diff_values(old, new)
    patched = {**old, **{name: change["new"] for name, change in changes.items()}}
    assert patched == new
    assert all(
        old[name] != change["new"] or type(old[name]) is not type(change["new"])
        for name, change in changes.items()
    )
    assert diff_values(new, new) == {}


def test_diff_tells_yes_from_one() -> None:
    """For a mixed field, Y (True) and a count of 1 are different values."""
    assert diff_values({"ward_neurology": True}, {"ward_neurology": 1}) == {
        "ward_neurology": {"old": True, "new": 1}
    }


@given(st.dictionaries(st.sampled_from(sorted(STATUS_VALUE_KINDS)), st.integers(-50, 500)))
def test_bed_record_roundtrip(values: dict[str, int]) -> None:
    """Any set of counts written as upstream tags parses back to the same counts."""
    tags = {}
    for field in BED_FIELDS:
        if field.name in values and field.kind is not Kind.FLAG:
            tags[field.upstream] = str(values[field.name])
        if field.capacity_name in values and field.capacity_upstream:
            tags[field.capacity_upstream] = str(values[field.capacity_name])
    report = parse_bed_record({"hpid": "A1100015", "hvidate": "20261124101500", **tags})
    for name, value in values.items():
        if STATUS_VALUE_KINDS[name] is not Kind.FLAG:
            assert report.values[name] == value
