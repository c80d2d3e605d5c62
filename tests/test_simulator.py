"""The NEMC upstream simulator over real HTTP: format, paging, control API and fault modes."""

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from domain.bed_fields import BED_FIELDS, Kind
from domain.demo_data import demo_hospitals
from domain.regions import REGIONS
from domain.severe_illness import DISEASE_CODE_CATEGORIES
from ingestion.simulator import (
    ACCEPTANCE,
    BASIC_INFO,
    BEDS,
    INSTITUTIONS,
    MESSAGES,
    XML_DECLARATION,
    Simulator,
    SimulatorServer,
    cut_in_element,
    parse_date,
    render_item,
    render_page,
    running_simulator,
)
from tests.conftest import _free_port
from tests.polling import wait_for

KEY = "sim+key/with=chars"  # needs URL-encoding, like the portal's real keys
SEOUL = {str(h["hpid"]) for h in demo_hospitals() if h["region_code"] == "11"}
FLAGS = {f.upstream for f in BED_FIELDS if f.kind is Kind.FLAG}
COUNTS = {f.upstream for f in BED_FIELDS if f.kind is Kind.COUNT}
POLL_SECONDS = 0.01


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[SimulatorServer, Simulator]]:
    with running_simulator(walk_interval=0, service_key=KEY) as pair:
        yield pair


@pytest.fixture
def server(running: tuple[SimulatorServer, Simulator]) -> Iterator[SimulatorServer]:
    yield running[0]
    running[1].clear_faults()
    running[1].set_walk(interval=0, fraction=0.1)


@pytest.fixture
def simulator(running: tuple[SimulatorServer, Simulator], server: SimulatorServer) -> Simulator:
    return running[1]


def fetch(url: str, timeout: float = 5) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def api_url(
    server: SimulatorServer, operation: str, key: str | None = KEY, **params: str | int
) -> str:
    query = {"serviceKey": key, **params} if key is not None else params
    return f"{server.api_url}/{operation}?{urllib.parse.urlencode(query)}"


def api(
    server: SimulatorServer, operation: str, key: str | None = KEY, **params: str | int
) -> tuple[int, str, str]:
    return fetch(api_url(server, operation, key, **params))


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - the simulator's own output, in a test


def items_of(text: str) -> tuple[ET.Element, list[ET.Element]]:
    root = parse(text)
    return root, root.findall("./body/items/item")


def fields(item: ET.Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in item}


def control(
    server: SimulatorServer, method: str, path: str, payload: object = None, raw: bytes = b""
) -> tuple[int, Any]:
    body = json.dumps(payload).encode() if payload is not None else raw
    request = urllib.request.Request(
        f"{server.base_url}/_control/{path}", data=body or None, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def seoul_beds(server: SimulatorServer) -> list[dict[str, str]]:
    status, _, text = api(server, BEDS, STAGE1="서울특별시", numOfRows=100)
    assert status == 200
    return [fields(item) for item in items_of(text)[1]]


def hospital_state(simulator: Simulator, hpid: str) -> dict[str, Any]:
    """The hospital's state as JSON, as loosely typed as the control API's answers."""
    return simulator.hospital(hpid)


def wait_for_quiet(
    read: Callable[[], object], quiet_for: float, max_changes: int, timeout: float = 5
) -> None:
    """Return once ``read()`` has answered the same for ``quiet_for`` seconds; fail if its answer
    changes more than ``max_changes`` times first, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last, since, changes = read(), time.monotonic(), 0
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() < deadline, f"still changing after {timeout} s"
        time.sleep(POLL_SECONDS)
        current = read()
        if current != last:
            changes += 1
            assert changes <= max_changes, f"changed {changes} times"
            last, since = current, time.monotonic()


def test_render_item_sorts_tags_plainly_escapes_and_drops_none() -> None:
    """render_item sorts by plain string order, escapes text and leaves None values out."""
    xml = render_item({"hv5": "Y", "hv10": "Y", "dutyName": "A&B", "MKioskTy1": "Y", "x": None})
    assert xml == (
        "<item><MKioskTy1>Y</MKioskTy1><dutyName>A&amp;B</dutyName><hv10>Y</hv10>"
        "<hv5>Y</hv5></item>"
    )


def test_render_page_of_nothing_is_empty_items_and_cut_is_unparseable() -> None:
    """An empty page renders <items/>; cut_in_element leaves XML that does not parse."""
    page = render_page([], page_no=3, num_of_rows=10, total_count=0)
    assert page.startswith(XML_DECLARATION)
    assert "<body><items/><numOfRows>10</numOfRows>" in page
    with pytest.raises(ET.ParseError):
        parse(cut_in_element(render_page([{"a": 1}], page_no=1, num_of_rows=1, total_count=1)))


def test_beds_response_is_utf8_xml_with_normal_header(server: SimulatorServer) -> None:
    """A beds answer is UTF-8 XML with the declaration, resultCode 00 and NORMAL SERVICE."""
    status, content_type, text = api(server, BEDS, STAGE1="서울특별시")
    assert status == 200
    assert content_type == "application/xml;charset=UTF-8"
    assert text.startswith(XML_DECLARATION)
    root, items = items_of(text)
    assert root.findtext("header/resultCode") == "00"
    assert root.findtext("header/resultMsg") == "NORMAL SERVICE."
    assert len(items) == 10
    assert root.findtext("body/numOfRows") == "10"


def test_paging_covers_every_seoul_hospital_exactly_once(server: SimulatorServer) -> None:
    """Pages of 7 cover each Seoul hospital once, with totalCount and rnum consistent."""
    seen: list[str] = []
    rnums: list[int] = []
    page_no = 1
    while True:
        _, _, text = api(server, BEDS, STAGE1="서울특별시", pageNo=page_no, numOfRows=7)
        root, items = items_of(text)
        assert root.findtext("body/totalCount") == str(len(SEOUL))
        assert root.findtext("body/pageNo") == str(page_no)
        assert root.findtext("body/numOfRows") == "7"
        if not items:
            assert "<items/>" in text
            break
        assert len(items) <= 7
        seen += [item.findtext("hpid") or "" for item in items]
        rnums += [int(item.findtext("rnum") or 0) for item in items]
        page_no += 1
    assert page_no == -(-len(SEOUL) // 7) + 1
    assert sorted(seen) == sorted(SEOUL)
    assert rnums == list(range(1, len(SEOUL) + 1))


def test_stage1_alias_and_stage2_filter(server: SimulatorServer) -> None:
    """STAGE1 accepts an alias; STAGE2 narrows to one 시군구; an unknown 시도 is empty."""
    _, _, text = api(server, BEDS, STAGE1="서울", numOfRows=100)
    assert {i.findtext("hpid") for i in items_of(text)[1]} == SEOUL
    _, _, text = api(server, BEDS, STAGE1="서울특별시", STAGE2="종로구", numOfRows=100)
    jongno = {
        h["hpid"]
        for h in demo_hospitals()
        if h["sido"] == "서울특별시" and h["sigungu"] == "종로구"
    }
    assert {i.findtext("hpid") for i in items_of(text)[1]} == jongno
    _, _, text = api(server, BEDS, STAGE1="아틀란티스")
    assert "<items/>" in text
    assert items_of(text)[0].findtext("body/totalCount") == "0"


def test_item_tags_are_in_upstream_sort_order(server: SimulatorServer) -> None:
    """Within every item of every operation, tags are sorted by plain string comparison."""
    hpid = sorted(SEOUL)[0]
    for operation, params in (
        (BEDS, {"STAGE1": "서울특별시"}),
        (ACCEPTANCE, {"STAGE1": "서울특별시", "SM_TYPE": "1"}),
        (INSTITUTIONS, {"Q0": "서울특별시"}),
        (BASIC_INFO, {"HPID": hpid}),
        (MESSAGES, {}),
    ):
        _, _, text = api(server, operation, numOfRows=100, **params)
        items = items_of(text)[1]
        assert items, operation
        for item in items:
            tags = [child.tag for child in item]
            assert tags == sorted(tags), operation
            assert len(tags) == len(set(tags))
    _, _, text = api(server, ACCEPTANCE, STAGE1="서울특별시")
    tags = [child.tag for child in items_of(text)[1][0]]
    assert tags.index("MKioskTy28") < tags.index("dutyName")
    assert tags.index("MKioskTy10") < tags.index("MKioskTy2")


def test_put_exact_values_show_up_in_next_beds_response(server: SimulatorServer) -> None:
    """A PUT of exact values and hvidate is what the next beds answer carries."""
    hpid = "A1100015"
    payload = {
        "values": {"hvec": -3, "hvctayn": "N1", "hv5": "Y", "hv10": "Y", "hvs01": 12},
        "hvidate": "20261124120000",
    }
    status, state = control(server, "PUT", f"hospitals/{hpid}", payload)
    assert status == 200
    assert state["values"]["hvec"] == -3
    item = next(i for i in seoul_beds(server) if i["hpid"] == hpid)
    assert item["hvec"] == "-3"
    assert item["hvs01"] == "12"
    assert item["hvctayn"] == "N1"
    assert item["hv5"] == "Y"
    assert item["hv10"] == "Y"
    assert item["hvidate"] == "20261124120000"
    assert list(item).index("hv10") < list(item).index("hv5")
    status, state = control(server, "GET", f"hospitals/{hpid}")
    assert status == 200
    assert state["hvidate"] == "20261124120000"
    assert state["values"]["hvctayn"] == "N1"


def test_put_without_hvidate_stamps_now(server: SimulatorServer) -> None:
    """A PUT without hvidate sets the hospital's hvidate to the current Korea time."""
    hpid = "A1100001"
    before = time.time()
    status, state = control(server, "PUT", f"hospitals/{hpid}", {"values": {"hvec": 2}})
    assert status == 200
    assert abs(parse_date(state["hvidate"]).timestamp() - before) < 5


def test_absent_values_are_absent_tags(server: SimulatorServer) -> None:
    """Removed or never-reported values are missing tags, never empty ones or zeros."""
    hpid = sorted(SEOUL)[1]
    status, _ = control(server, "PUT", f"hospitals/{hpid}", {"remove": ["hv28", "hvs02", "hv5"]})
    assert status == 200
    items = seoul_beds(server)
    item = next(i for i in items if i["hpid"] == hpid)
    assert not {"hv28", "hvs02", "hv5"} & set(item)
    assert all(value != "" for i in items for value in i.values())
    tag_sets = {frozenset(i) for i in items}
    assert len(tag_sets) > 1  # hospitals report different subsets


def test_generated_values_are_deterministic_and_plausible() -> None:
    """Values depend only on the seed; counts, flags and mixed fields look like upstream's."""
    first, again, other = Simulator(walk_interval=0), Simulator(walk_interval=0), Simulator(7, 0)
    hpids = [str(h["hpid"]) for h in demo_hospitals()]
    states = [hospital_state(first, hpid)["values"] for hpid in hpids]
    assert states == [again.hospital(hpid)["values"] for hpid in hpids]
    assert states != [other.hospital(hpid)["values"] for hpid in hpids]
    assert all(4 <= v["hvs01"] <= 40 and -5 <= v["hvec"] <= v["hvs01"] for v in states)
    assert any(v["hvec"] < 0 for v in states)
    flag_values = [v[tag] for v in states for tag in FLAGS if tag in v]
    assert set(flag_values) == {"Y", "N1"}
    assert flag_values.count("Y") > len(flag_values) / 2
    mixed = [v[tag] for v in states for tag in ("hv5", "hv7", "hv42") if tag in v]
    assert "Y" in mixed
    assert any(isinstance(value, int) for value in mixed)
    share = sum("hv2" in v for v in states) / len(states)
    assert 0.3 < share < 0.7


def test_walk_step_changes_some_hospitals_and_their_hvidate(
    server: SimulatorServer, simulator: Simulator
) -> None:
    """A walk step changes about change_fraction of hospitals and stamps their hvidate."""
    hpids = [str(h["hpid"]) for h in demo_hospitals()]
    before = {hpid: hospital_state(simulator, hpid) for hpid in hpids}
    status, answer = control(server, "POST", "walk/step")
    assert status == 200
    changed = answer["changed"]
    assert 30 <= len(changed) <= 50
    for hpid in changed:
        after = hospital_state(simulator, hpid)
        assert after["values"] != before[hpid]["values"]
        assert after["hvidate"] >= before[hpid]["hvidate"]
    unchanged = [hpid for hpid in hpids if hpid not in changed]
    assert all(simulator.hospital(hpid) == before[hpid] for hpid in unchanged)


def test_background_walk_runs_and_stops(server: SimulatorServer, simulator: Simulator) -> None:
    """POST /_control/walk starts the background walk; interval 0 stops it."""
    hpids = [str(h["hpid"]) for h in demo_hospitals()]

    def values() -> list[object]:
        return [simulator.hospital(hpid)["values"] for hpid in hpids]

    snapshot = values()
    interval = 0.05
    status, settings = control(server, "POST", "walk", {"interval": interval, "fraction": 0.2})
    assert status == 200
    assert settings == {"interval": interval, "fraction": 0.2}
    wait_for(lambda: values() != snapshot, "the walk to change something", timeout=5)
    assert control(server, "POST", "walk", {"interval": 0})[0] == 200
    # A step already under way when the walk stopped may still land (one change at most);
    # after it, the values hold still for six of the old intervals.
    wait_for_quiet(values, quiet_for=6 * interval, max_changes=1)


def test_missing_service_key_is_plain_401(server: SimulatorServer) -> None:
    """Without serviceKey the answer is HTTP 401 with the plain text Unauthorized."""
    status, content_type, text = api(server, BEDS, key=None, STAGE1="서울특별시")
    assert (status, text) == (401, "Unauthorized")
    assert content_type.startswith("text/plain")


def test_wrong_or_double_encoded_key_gets_gateway_envelope(server: SimulatorServer) -> None:
    """A wrong key, or the right one encoded twice, gets the code-30 gateway envelope (HTTP 200)."""
    for key in ("not-the-key", urllib.parse.quote(KEY, safe="")):
        status, _, text = api(server, BEDS, key=key, STAGE1="서울특별시")
        assert status == 200
        root = parse(text)
        assert root.tag == "OpenAPI_ServiceResponse"
        assert root.findtext("cmmMsgHeader/returnReasonCode") == "30"
        assert root.findtext("cmmMsgHeader/returnAuthMsg") == "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"


def test_http500_fault_switches_off_after_its_calls(server: SimulatorServer) -> None:
    """An http500 fault with calls=2 fails two calls, then removes itself."""
    status, fault = control(server, "POST", "faults", {"mode": "http500", "calls": 2})
    assert status == 201
    assert fault["calls"] == 2
    assert api(server, BEDS, STAGE1="서울특별시")[0] == 500
    assert api(server, INSTITUTIONS)[0] == 500
    assert api(server, BEDS, STAGE1="서울특별시")[0] == 200
    assert control(server, "GET", "faults") == (200, {"faults": []})


def test_fault_limited_to_operation_and_region(server: SimulatorServer) -> None:
    """A fault for one operation and 시도 leaves other operations and 시도 alone."""
    payload = {"mode": "http500", "operations": [BEDS], "regions": ["11"]}
    assert control(server, "POST", "faults", payload)[0] == 201
    assert api(server, BEDS, STAGE1="서울특별시")[0] == 500
    assert api(server, BEDS, STAGE1="부산광역시")[0] == 200
    assert api(server, ACCEPTANCE, STAGE1="서울특별시")[0] == 200
    assert api(server, BASIC_INFO, HPID="A1100015")[0] == 200
    assert control(server, "DELETE", "faults") == (200, {"removed": 1})
    assert api(server, BEDS, STAGE1="서울특별시")[0] == 200


def test_malformed_fault_cuts_the_xml_inside_an_element(server: SimulatorServer) -> None:
    """A malformed answer is HTTP 200 XML cut short, which does not parse."""
    control(server, "POST", "faults", {"mode": "malformed", "calls": 1})
    status, _, text = api(server, BEDS, STAGE1="서울특별시")
    assert status == 200
    assert text.startswith(XML_DECLARATION)
    assert not text.endswith("</response>")
    with pytest.raises(ET.ParseError):
        parse(text)
    parse(api(server, BEDS, STAGE1="서울특별시")[2])


def test_code22_fault_is_quota_error_without_body(server: SimulatorServer) -> None:
    """code22 answers resultCode 22 in the normal envelope, with no body."""
    control(server, "POST", "faults", {"mode": "code22"})
    root = parse(api(server, ACCEPTANCE, STAGE1="서울특별시")[2])
    assert root.findtext("header/resultCode") == "22"
    assert root.findtext("header/resultMsg") == "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR."
    assert root.find("body") is None


def test_code30_fault_answers_the_gateway_envelope(server: SimulatorServer) -> None:
    """code30 answers the gateway's unregistered-key envelope even for the right key."""
    control(server, "POST", "faults", {"mode": "code30", "calls": 1})
    root = parse(api(server, MESSAGES)[2])
    assert root.tag == "OpenAPI_ServiceResponse"
    assert root.findtext("cmmMsgHeader/returnReasonCode") == "30"


def test_timeout_fault_outlasts_the_client_timeout(server: SimulatorServer) -> None:
    """A timeout fault keeps the client waiting past its own timeout."""
    control(server, "POST", "faults", {"mode": "timeout", "seconds": 3, "calls": 1})
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(api_url(server, BEDS, STAGE1="서울특별시"), timeout=0.3)
    assert time.monotonic() - started < 2
    assert api(server, BEDS, STAGE1="서울특별시")[0] == 200


def test_timeout_fault_answers_normally_after_its_delay(server: SimulatorServer) -> None:
    """A short timeout fault delays the answer, which is then a normal one."""
    control(server, "POST", "faults", {"mode": "timeout", "seconds": 0.4, "calls": 1})
    started = time.monotonic()
    status, _, text = api(server, BEDS, STAGE1="서울특별시")
    assert time.monotonic() - started >= 0.4
    assert status == 200
    assert len(items_of(text)[1]) == 10


def test_truncated_fault_returns_fewer_items_than_total_count(server: SimulatorServer) -> None:
    """truncated claims the full totalCount but the last pages come back short, then empty."""
    control(server, "POST", "faults", {"mode": "truncated", "operations": [BEDS]})
    sizes = []
    for page_no in range(1, 7):
        _, _, text = api(server, BEDS, STAGE1="서울특별시", pageNo=page_no)
        root, items = items_of(text)
        assert root.findtext("body/totalCount") == str(len(SEOUL))
        sizes.append(len(items))
    assert sum(sizes) < len(SEOUL)
    assert sizes[:4] == [10, 10, 10, 10]
    assert 0 < sizes[4] < 10
    assert sizes[5] == 0


def test_stale_hvidate_fault_sends_older_hvidates_with_other_values(
    server: SimulatorServer, simulator: Simulator
) -> None:
    """stale_hvidate items are one hour older than the current hvidate and differ in values."""
    current: dict[str, Any] = {hpid: simulator.hospital(hpid) for hpid in SEOUL}
    control(server, "POST", "faults", {"mode": "stale_hvidate", "calls": 1})
    items = seoul_beds(server)
    assert len(items) == len(SEOUL)
    differing = 0
    for item in items:
        state = current[item["hpid"]]
        expected = parse_date(str(state["hvidate"])) - timedelta(hours=1)
        assert parse_date(item["hvidate"]) == expected
        expected_values = {tag: str(value) for tag, value in state["values"].items()}
        differing += {k: v for k, v in item.items() if k in expected_values} != expected_values
    assert differing == len(SEOUL)
    assert all(i["hvidate"] == current[i["hpid"]]["hvidate"] for i in seoul_beds(server))


def test_bad_record_fault_spoils_one_item_per_page(server: SimulatorServer) -> None:
    """bad_record puts exactly one hpid-less item, or one non-numeric count, on each page."""
    control(server, "POST", "faults", {"mode": "bad_record", "variant": "no_hpid", "calls": 2})
    for page_no in (1, 2):
        _, _, text = api(server, BEDS, STAGE1="서울특별시", pageNo=page_no)
        items = [fields(i) for i in items_of(text)[1]]
        assert sum("hpid" not in i for i in items) == 1
    control(server, "POST", "faults", {"mode": "bad_record", "variant": "bad_count", "calls": 1})
    _, _, text = api(server, BEDS, STAGE1="서울특별시")
    items = [fields(i) for i in items_of(text)[1]]
    spoiled = [i for i in items if any(v == "abc" for k, v in i.items() if k in COUNTS)]
    assert len(spoiled) == 1
    assert all("hpid" in i for i in items)
    _, _, text = api(server, BEDS, STAGE1="서울특별시")
    assert all(i.findtext("hpid") for i in items_of(text)[1])


def test_other_operations_answer_from_the_demo_hospitals(server: SimulatorServer) -> None:
    """List, basic info, acceptance and messages answer with the documented fields."""
    _, _, text = api(server, INSTITUTIONS, numOfRows=1000)
    root, items = items_of(text)
    assert root.findtext("body/totalCount") == str(len(demo_hospitals())) == str(len(items))
    assert set(fields(items[0])) == {
        "dutyAddr", "dutyEmcls", "dutyEmclsName", "dutyName", "dutyTel1", "dutyTel3",
        "hpid", "rnum", "wgs84Lat", "wgs84Lon",
    }  # fmt: skip
    _, _, text = api(server, INSTITUTIONS, Q0="서울특별시", numOfRows=1000)
    assert {i.findtext("hpid") for i in items_of(text)[1]} == SEOUL

    _, _, text = api(server, BASIC_INFO, HPID="A1100001")
    (basic,) = (fields(i) for i in items_of(text)[1])
    assert basic["hpid"] == "A1100001"
    assert basic["dutyEryn"] == "1"
    assert {"dutyAddr", "dutyName", "dutyTel1", "dutyTel3", "wgs84Lat", "wgs84Lon"} <= set(basic)

    _, _, text = api(server, ACCEPTANCE, STAGE1="서울특별시", numOfRows=100)
    rows = [fields(i) for i in items_of(text)[1]]
    assert {r["hpid"] for r in rows} == SEOUL
    values = [v for r in rows for k, v in r.items() if k.startswith("MKioskTy") and "Msg" not in k]
    assert set(values) <= {"Y", "N1", "N", "불가능", "정보미제공"}
    assert values.count("Y") + values.count("N1") > 0.75 * len(values)
    assert all(f"MKioskTy{n}" in r for r in rows for n in range(1, 29))


def test_messages_cover_about_a_tenth_of_hospitals_and_follow_puts(
    server: SimulatorServer,
) -> None:
    """Messages exist for about 10% of hospitals; a PUT of messages replaces a hospital's."""
    _, _, text = api(server, MESSAGES, numOfRows=1000)
    rows = [fields(i) for i in items_of(text)[1]]
    with_messages = {r["hpid"] for r in rows}
    assert 0.05 * len(demo_hospitals()) < len(with_messages) < 0.15 * len(demo_hospitals())
    for row in rows:
        assert row["emcOrgCod"] == row["hpid"]
        assert row["symBlkMsgTyp"] in ("응급", "중증")
        if row["symBlkMsgTyp"] == "응급":
            assert row["symTypCod"] == "Y000"
        else:
            assert row["symTypCod"] in DISEASE_CODE_CATEGORIES
    hpid = "A1100015"
    message = {"type": "중증", "message": "장비부족", "code": "Y0031", "start": "20261124100000"}
    assert control(server, "PUT", f"hospitals/{hpid}", {"messages": [message]})[0] == 200
    _, _, text = api(server, MESSAGES, HPID=hpid)
    (row,) = (fields(i) for i in items_of(text)[1])
    assert row["symTypCod"] == "Y0031"
    assert row["symTypCodMag"] == "[뇌출혈수술] 거미막하출혈"
    assert row["symBlkSttDtm"] == "20261124100000"
    assert "symBlkEndDtm" not in row
    _, _, text = api(server, MESSAGES, Q0="서울특별시", Q1="강남구", numOfRows=100)
    assert hpid in {i.findtext("hpid") for i in items_of(text)[1]}


def test_control_rejects_bad_input(server: SimulatorServer) -> None:
    """Bad control input answers 400 (404 for an unknown hpid) with a JSON error."""
    hpid = "A1100015"
    bad = [
        ("PUT", f"hospitals/{hpid}", {"values": {"nope": 1}}),
        ("PUT", f"hospitals/{hpid}", {"values": {"hvec": True}}),
        ("PUT", f"hospitals/{hpid}", {"hvidate": "2026-11-24"}),
        ("PUT", f"hospitals/{hpid}", {"remove": ["hpid"]}),
        ("PUT", f"hospitals/{hpid}", {"colour": "red"}),
        ("POST", "faults", {"mode": "explode"}),
        ("POST", "faults", {}),
        ("POST", "faults", {"mode": "http500", "operations": ["getNothing"]}),
        ("POST", "faults", {"mode": "http500", "regions": ["Atlantis"]}),
        ("POST", "faults", {"mode": "http500", "calls": 0}),
        ("POST", "walk", {"fraction": 2}),
        ("POST", "walk", {"interval": "soon"}),
    ]
    for method, path, payload in bad:
        status, answer = control(server, method, path, payload)
        assert status == 400, (path, payload)
        assert answer["error"], (path, payload)
    assert control(server, "POST", "faults", raw=b"{not json")[0] == 400
    assert control(server, "GET", "hospitals/A0000000")[0] == 404
    assert control(server, "GET", "faults") == (200, {"faults": []})


def test_stats_count_calls_per_operation_and_outcome(server: SimulatorServer) -> None:
    """/_control/stats counts calls per operation and per outcome."""
    assert control(server, "DELETE", "stats")[0] == 200
    api(server, BEDS, STAGE1="서울특별시")
    api(server, BEDS, STAGE1="서울특별시")
    api(server, BEDS, key=None, STAGE1="서울특별시")
    control(server, "POST", "faults", {"mode": "http500", "calls": 1})
    api(server, INSTITUTIONS)
    status, stats = control(server, "GET", "stats")
    assert status == 200
    assert stats["calls"] == 4
    assert stats["operations"][BEDS] == {"calls": 3, "outcomes": {"ok": 2, "unauthorized": 1}}
    assert stats["operations"][INSTITUTIONS]["outcomes"] == {"http500": 1}
    assert stats["outcomes"] == {"http500": 1, "ok": 2, "unauthorized": 1}


def test_health_and_region_listing(server: SimulatorServer) -> None:
    """Health reports the hospital count; the hospital listing filters by region."""
    status, health = control(server, "GET", "health")
    assert status == 200
    assert health["status"] == "ok"
    assert health["hospitals"] == len(demo_hospitals())
    for region in REGIONS[:3]:
        _, listing = control(server, "GET", f"hospitals?region={region.code}")
        assert {h["region_code"] for h in listing["hospitals"]} == {region.code}


@pytest.mark.parametrize("quiet", [False, True])
def test_the_command_logs_each_request_unless_quiet(quiet: bool, tmp_path: Path) -> None:
    """``python -m ingestion.simulator``: one stderr line per request, none with ``--quiet``
    (as bin/start runs it: the demo's worker polls 17 regions every 5 s)."""
    port = _free_port()
    log = tmp_path / "simulator.log"
    argv = [
        sys.executable,
        "-m",
        "ingestion.simulator",
        "--port",
        str(port),
        "--walk-interval",
        "0",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, *(["--quiet"] if quiet else [])], stderr=out, cwd=settings.BASE_DIR
        )
        try:
            wait_for(lambda: b"NEMC simulator:" in log.read_bytes(), "the simulator to start")
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/B552657/nothing-here", timeout=5)
        finally:
            process.terminate()
            process.wait(timeout=10)
    request_lines = [line for line in log.read_text().splitlines() if "nothing-here" in line]
    assert len(request_lines) == (0 if quiet else 1)
