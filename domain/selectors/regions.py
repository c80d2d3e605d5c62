"""Reads of each region's bed data as a whole: how many hospitals, how old their data is and how
its recent polls went (the ingestion health the admin console shows)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min

from domain.models import Hospital, RegionFreshness
from domain.regions import REGIONS_BY_CODE


@dataclass(frozen=True, slots=True)
class RegionData:
    region_code: str
    name: str  # the 시도 (the code itself for a code domain.regions does not know)
    hospitals: int
    newest_hvidate: datetime | None  # None: no hospital of the region has a status yet
    oldest_hvidate: datetime | None
    stale_since: datetime | None  # set while the region is stale (see ``stale``)
    consecutive_failures: int
    last_error: str

    @property
    def stale(self) -> bool:
        """The rule ``stale_region_codes`` applies: stale while ``stale_since`` is set."""
        return self.stale_since is not None


def region_data_list() -> list[RegionData]:
    """One row per region that has hospitals or has been polled (a ``RegionFreshness`` row),
    by region code. Two queries whatever the number of hospitals: their count and the
    newest and oldest ``hvidate`` grouped by region, and the freshness rows."""
    aggregates = {
        row["region_code"]: row
        for row in Hospital.objects.values("region_code")
        .annotate(
            hospitals=Count("id"),
            newest=Max("er_status__hvidate"),
            oldest=Min("er_status__hvidate"),
        )
        .order_by()
    }
    freshness = {f.region_code: f for f in RegionFreshness.objects.all()}
    rows = []
    for code in sorted(aggregates.keys() | freshness.keys()):
        counted, polled = aggregates.get(code), freshness.get(code)
        region = REGIONS_BY_CODE.get(code)
        rows.append(
            RegionData(
                region_code=code,
                name=region.name if region else code,
                hospitals=counted["hospitals"] if counted else 0,
                newest_hvidate=counted["newest"] if counted else None,
                oldest_hvidate=counted["oldest"] if counted else None,
                stale_since=polled.stale_since if polled else None,
                consecutive_failures=polled.consecutive_failures if polled else 0,
                last_error=polled.last_error if polled else "",
            )
        )
    return rows
