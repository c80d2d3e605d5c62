"""The 17 시도 (first-level regions); their administrative codes name the ``beds.<code>`` streams.

Codes are the statistical 시도 codes (Seoul 11 ... Jeju 50; 강원 and 전북 use their current
특별자치도 codes 51 and 52). ``aliases`` are older or short names found in upstream addresses.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()

    @property
    def stream(self) -> str:
        return f"beds.{self.code}"


REGIONS: tuple[Region, ...] = (
    Region("11", "서울특별시", "Seoul", ("서울시", "서울")),
    Region("26", "부산광역시", "Busan", ("부산시", "부산")),
    Region("27", "대구광역시", "Daegu", ("대구시", "대구")),
    Region("28", "인천광역시", "Incheon", ("인천시", "인천")),
    Region("29", "광주광역시", "Gwangju", ("광주시",)),
    Region("30", "대전광역시", "Daejeon", ("대전시", "대전")),
    Region("31", "울산광역시", "Ulsan", ("울산시", "울산")),
    Region("36", "세종특별자치시", "Sejong", ("세종시", "세종")),
    Region("41", "경기도", "Gyeonggi", ("경기",)),
    Region("43", "충청북도", "Chungbuk", ("충북",)),
    Region("44", "충청남도", "Chungnam", ("충남",)),
    Region("46", "전라남도", "Jeonnam", ("전남",)),
    Region("47", "경상북도", "Gyeongbuk", ("경북",)),
    Region("48", "경상남도", "Gyeongnam", ("경남",)),
    Region("50", "제주특별자치도", "Jeju", ("제주도", "제주")),
    Region("51", "강원특별자치도", "Gangwon", ("강원도", "강원")),
    Region("52", "전북특별자치도", "Jeonbuk", ("전라북도", "전북")),
)

REGIONS_BY_CODE: dict[str, Region] = {region.code: region for region in REGIONS}
REGION_CODE_CHOICES: list[tuple[str, str]] = [(r.code, r.name) for r in REGIONS]


def region_for_sido(sido: str) -> Region | None:
    """The region whose name or alias is ``sido`` (a 시도 as written upstream), or None."""
    sido = sido.strip()
    for region in REGIONS:
        if sido == region.name or sido in region.aliases:
            return region
    return None
