"""The NEMC open API over HTTP: one call per page, every page of a query, typed errors.

The service key is sent as the portal's *decoding* key and URL-encoded once here (sending the
already-encoded key and encoding it again is the upstream's classic error 30). It never appears
in logs or exception messages: URLs are logged without their query string.
"""

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from django.conf import settings

from ingestion.errors import UpstreamMalformed, UpstreamRejected, UpstreamUnavailable
from ingestion.parsing import Page, parse_page

logger = logging.getLogger(__name__)

BEDS = "getEmrrmRltmUsefulSckbdInfoInqire"
ACCEPTANCE = "getSrsillDissAceptncPosblInfoInqire"
INSTITUTIONS = "getEgytListInfoInqire"
BASIC_INFO = "getEgytBassInfoInqire"
MESSAGES = "getEmrrmSrsillDissMsgInqire"
MAX_PAGES = 50  # 50 pages of UPSTREAM_PAGE_SIZE rows is far beyond any real answer


@dataclass(frozen=True, slots=True)
class CallRecord:
    operation: str
    seconds: float
    outcome: str  # "ok" or the error class name


class UpstreamClient:
    """``before_call`` runs before every HTTP request (the call budget raises there to stop a
    query that would overspend); ``after_call`` sees each call's outcome (metrics)."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        service_key: str | None = None,
        timeout: float | None = None,
        page_size: int | None = None,
        before_call: Callable[[str], None] = lambda operation: None,
        after_call: Callable[[CallRecord], None] = lambda record: None,
    ) -> None:
        self._base_url = (base_url or settings.UPSTREAM_BASE_URL).rstrip("/")
        self._service_key = (
            service_key if service_key is not None else settings.UPSTREAM_SERVICE_KEY
        )
        self._page_size = page_size or settings.UPSTREAM_PAGE_SIZE
        self._http = httpx.Client(timeout=timeout or settings.UPSTREAM_TIMEOUT_SECONDS)
        self._before_call = before_call
        self._after_call = after_call

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "UpstreamClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch_all(self, operation: str, **params: str) -> Iterator[dict[str, str]]:
        """Every item of the query, page after page until ``totalCount`` is reached. A page
        that comes back short before that is an error (``UpstreamMalformed``), never a silently
        shorter list."""
        seen = 0
        for page_no in range(1, MAX_PAGES + 1):
            page = self.fetch_page(operation, page_no=page_no, **params)
            yield from page.items
            seen += len(page.items)
            if seen >= page.total_count:
                return
            if not page.items:
                raise UpstreamMalformed(
                    f"{operation}: page {page_no} is empty at {seen} of {page.total_count} items"
                )
        raise UpstreamMalformed(f"{operation}: more than {MAX_PAGES} pages")

    def fetch_page(self, operation: str, *, page_no: int, **params: str) -> Page:
        self._before_call(operation)
        query = {
            "serviceKey": self._service_key,
            "pageNo": str(page_no),
            "numOfRows": str(self._page_size),
            **params,
        }
        started = time.monotonic()
        outcome = "ok"
        try:
            response = self._http.get(f"{self._base_url}/{operation}", params=query)
            if response.status_code in (401, 403):
                raise UpstreamRejected(f"{operation}: HTTP {response.status_code}")
            if response.status_code == 429 or response.status_code >= 500:
                raise UpstreamUnavailable(f"{operation}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise UpstreamRejected(f"{operation}: HTTP {response.status_code}")
            return parse_page(response.content)
        except httpx.TimeoutException:
            outcome = "UpstreamTimeout"
            raise UpstreamUnavailable(f"{operation}: timed out") from None
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
            raise UpstreamUnavailable(f"{operation}: {type(exc).__name__}") from None
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            seconds = time.monotonic() - started
            # One line per page polled: a success is routine (DEBUG), anything else is news.
            level = logging.DEBUG if outcome == "ok" else logging.INFO
            logger.log(
                level, "upstream %s page %s: %s in %.2fs", operation, page_no, outcome, seconds
            )
            self._after_call(CallRecord(operation, seconds, outcome))
