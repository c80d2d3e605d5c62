"""The upstream's XML, rendered purely (strings in, strings out; no state).

The upstream's ``<response><header>…</header><body>…</body></response>`` envelope, children of
``<item>`` sorted by plain string comparison of their tag names (uppercase first, ``hv10`` before
``hv5``), absent tags for unknown values, ``<items/>`` for an empty page, and the data.go.kr
gateway's own envelope for a key it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape

XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'

Fields = Mapping[str, object]


def render_item(fields: Fields) -> str:
    """One ``<item>``: a child per field, sorted by plain string comparison of the tag names
    (the upstream's order: uppercase before lowercase, ``hv10`` before ``hv5``), text escaped.
    Fields whose value is ``None`` are left out (an unknown value is an absent tag)."""
    children = "".join(
        f"<{tag}>{escape(str(value))}</{tag}>"
        for tag, value in sorted(fields.items())
        if value is not None
    )
    return f"<item>{children}</item>"


def render_page(
    items: Sequence[Fields], *, page_no: int, num_of_rows: int, total_count: int
) -> str:
    """A successful answer (resultCode 00) holding ``items`` as one page; ``<items/>`` if none."""
    rendered = (
        "<items>" + "".join(render_item(i) for i in items) + "</items>" if items else ("<items/>")
    )
    return (
        f"{XML_DECLARATION}<response>{_header('00', 'NORMAL SERVICE.')}<body>{rendered}"
        f"<numOfRows>{num_of_rows}</numOfRows><pageNo>{page_no}</pageNo>"
        f"<totalCount>{total_count}</totalCount></body></response>"
    )


def render_result(code: str, message: str) -> str:
    """The normal envelope with an error ``resultCode`` and no body (e.g. 22, quota exceeded)."""
    return f"{XML_DECLARATION}<response>{_header(code, message)}</response>"


def render_gateway_error(
    reason_code: int = 30, auth_message: str = "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
) -> str:
    """The data.go.kr gateway's own error envelope (sent with HTTP 200)."""
    return (
        f"{XML_DECLARATION}<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{escape(auth_message)}</returnAuthMsg>"
        f"<returnReasonCode>{reason_code}</returnReasonCode></cmmMsgHeader>"
        "</OpenAPI_ServiceResponse>"
    )


def cut_in_element(xml: str) -> str:
    """``xml`` cut short in the middle of an element: just inside the first tag that starts at or
    after the middle of the document (always unparseable: the root is never closed)."""
    start = xml.find("<", len(xml) // 2)
    if start < 0:
        start = xml.rfind("<")
    return xml[: start + 3]


def paginate(rows: Sequence[Any], page_no: int, num_of_rows: int) -> list[Any]:
    """The rows of 1-based page ``page_no`` of ``num_of_rows`` rows (empty past the end)."""
    start = (page_no - 1) * num_of_rows
    return list(rows[start : start + num_of_rows])


def _header(code: str, message: str) -> str:
    return (
        f"<header><resultCode>{escape(code)}</resultCode>"
        f"<resultMsg>{escape(message)}</resultMsg></header>"
    )
