import json
from importlib.resources import files

from domain.demo_data import HOSPITAL_KEYS, demo_hospitals
from domain.regions import REGIONS_BY_CODE

REAL_COORDINATES = {
    "A1100015": (37.4929, 127.0463),
    "A1100001": (37.5938765502235, 127.05183223390303),
    "A0000191": (37.56740267694248, 126.96704997103927),
    "A0000190": (37.5685066114755, 126.9678441210582),
    "A0000005": (37.57976260966429, 126.99897999722211),
}
REGION_CODES = set(REGIONS_BY_CODE)


def _synthetic(hospitals: list[dict[str, object]]) -> list[dict[str, object]]:
    return [h for h in hospitals if h["hpid"] not in REAL_COORDINATES]


def test_total_count_is_about_five_hundred() -> None:
    """The demo set holds between 480 and 520 hospitals."""
    assert 480 <= len(demo_hospitals()) <= 520


def test_every_hospital_has_exactly_the_documented_keys() -> None:
    """Each hospital dict has exactly HOSPITAL_KEYS."""
    assert all(tuple(h) == HOSPITAL_KEYS for h in demo_hospitals())


def test_all_seventeen_regions_are_present() -> None:
    """Every one of the 17 시도 region codes has hospitals."""
    assert {h["region_code"] for h in demo_hospitals()} == REGION_CODES


def test_hpids_are_unique_and_eight_characters() -> None:
    """Hpids are unique, 8 characters, and synthetic ones follow A + region + 9 + 4 digits."""
    hospitals = demo_hospitals()
    hpids = [str(h["hpid"]) for h in hospitals]
    assert len(set(hpids)) == len(hpids)
    assert all(len(hpid) == 8 for hpid in hpids)
    for h in _synthetic(hospitals):
        hpid = str(h["hpid"])
        assert hpid[1:3] == h["region_code"]
        assert hpid[3] == "9"
        assert hpid[4:].isdigit()


def test_names_are_unique() -> None:
    """No two hospitals share a name."""
    names = [h["name"] for h in demo_hospitals()]
    assert len(set(names)) == len(names)


def test_synthetic_phones_use_the_region_area_code_and_differ() -> None:
    """Synthetic ER and main phones share the 시도 area code and are different numbers."""
    geography = json.loads(
        (files("domain") / "fixtures" / "demo_geography.json").read_text(encoding="utf-8")
    )
    prefixes = {r["region_code"]: r["phone_prefix"] for r in geography["regions"]}
    for h in _synthetic(demo_hospitals()):
        main, er = str(h["main_phone"]), str(h["er_phone"])
        assert main != er
        assert main.split("-")[0] == er.split("-")[0] == prefixes[h["region_code"]]


def test_synthetic_coordinates_lie_near_their_own_sigungu() -> None:
    """Every synthetic hospital lies within 0.011° of its own 시군구's reference point."""
    geography = json.loads(
        (files("domain") / "fixtures" / "demo_geography.json").read_text(encoding="utf-8")
    )
    centroids = {
        (r["region_code"], s["name"]): (s["latitude"], s["longitude"])
        for r in geography["regions"]
        for s in r["sigungu"]
    }
    for h in _synthetic(demo_hospitals()):
        lat, lon = centroids[(h["region_code"], h["sigungu"])]
        assert abs(float(h["latitude"]) - lat) <= 0.011  # type: ignore[arg-type]
        assert abs(float(h["longitude"]) - lon) <= 0.011  # type: ignore[arg-type]


def test_same_seed_is_identical_and_other_seed_differs() -> None:
    """The output is a pure function of the seed."""
    assert demo_hospitals(7) == demo_hospitals(7)
    assert demo_hospitals(7) != demo_hospitals(8)
    assert demo_hospitals() == demo_hospitals(2026)


def test_real_institutions_come_first_with_real_coordinates() -> None:
    """The NEMC sample institutions lead the list with their real coordinates."""
    hospitals = demo_hospitals()
    head = {str(h["hpid"]): (h["latitude"], h["longitude"]) for h in hospitals[:5]}
    assert head == REAL_COORDINATES
    assert hospitals[1]["name"] == "경희대학교병원"
