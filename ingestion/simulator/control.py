"""The control API: JSON calls below ``/_control/``, each routed by a table to one handler that
calls ``Simulator``'s public methods.

Bad input answers 400 ``{"error": "..."}``, unknown hpids, faults and endpoints 404. The body of
a POST or PUT is read as JSON before routing, so a body that is not a JSON object answers 400
whatever the path.

* ``GET /_control/health``
* ``GET /_control/hospitals[?region=11]`` and ``GET /_control/hospitals/<hpid>``
* ``PUT /_control/hospitals/<hpid>`` ``{"values": {"hvec": -3, "hvctayn": "N1"},
  "remove": ["hv28"], "hvidate": "20261124120000", "acceptance": {"MKioskTy1": "N1"},
  "messages": [{"type": "응급", "message": "...", "code": "Y000"}]}`` (every key optional;
  ``hvidate`` defaults to now; ``acceptance`` values of ``null`` remove the tag; ``messages``
  replaces the hospital's messages)
* ``GET /_control/faults``, ``POST /_control/faults`` ``{"mode": "http500",
  "operations": [...], "regions": ["11"], "calls": 3, "seconds": 30, "missing": 5,
  "variant": "no_hpid"}`` (all but ``mode`` optional), ``DELETE /_control/faults`` (all) and
  ``DELETE /_control/faults/<id>``
* ``POST /_control/walk`` ``{"interval": 1.0, "fraction": 0.2}`` (interval 0 stops the walk),
  ``POST /_control/walk/step`` (one step now; answers the changed hpids)
* ``GET /_control/stats`` (calls per operation and per outcome), ``DELETE /_control/stats``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

from ingestion.simulator.protocol import Reply
from ingestion.simulator.validation import ControlError, is_number, only_keys

if TYPE_CHECKING:
    from ingestion.simulator.state import Simulator


@dataclass(frozen=True, slots=True)
class _Call:
    """One routed control call: the path segments its route's ``*`` stood for, the query string
    and the JSON body (``{}`` unless POST or PUT)."""

    simulator: Simulator
    args: tuple[str, ...]
    query: str
    data: dict[str, Any]


_Handler = Callable[[_Call], tuple[int, object]]


def answer_control(simulator: Simulator, method: str, path: str, query: str, body: bytes) -> Reply:
    """Answer one control call (``path`` below ``/_control/``) with JSON."""
    try:
        status, payload = _route(simulator, method, path.strip("/"), query, body)
    except ControlError as exc:
        return Reply.json(exc.status, {"error": str(exc)})
    return Reply.json(status, payload)


def _route(
    simulator: Simulator, method: str, path: str, query: str, body: bytes
) -> tuple[int, object]:
    parts = tuple(path.split("/")) if path else ()
    data = _json_body(body) if method in ("POST", "PUT") else {}
    for (route_method, pattern), handler in _ROUTES.items():
        if route_method != method:
            continue
        args = _matched(pattern, parts)
        if args is not None:
            return handler(_Call(simulator, args, query, data))
    raise ControlError(f"no control endpoint {method} /_control/{path}", status=404)


def _matched(pattern: str, parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """The segments of ``parts`` that the ``*`` of ``pattern`` (segments split by ``/``) stand
    for, in order; None if ``parts`` do not match it."""
    segments = pattern.split("/")
    if len(segments) != len(parts):
        return None
    if any(want not in ("*", got) for want, got in zip(segments, parts, strict=True)):
        return None
    return tuple(got for want, got in zip(segments, parts, strict=True) if want == "*")


def _health(call: _Call) -> tuple[int, object]:
    return 200, call.simulator.health()


def _hospital_list(call: _Call) -> tuple[int, object]:
    region = parse_qs(call.query).get("region", [None])[0]
    return 200, {"hospitals": call.simulator.hospital_list(region)}


def _hospital(call: _Call) -> tuple[int, object]:
    (hpid,) = call.args
    try:
        return 200, call.simulator.hospital(hpid)
    except KeyError:
        raise ControlError(f"unknown hpid {hpid!r}", status=404) from None


def _hospital_update(call: _Call) -> tuple[int, object]:
    (hpid,) = call.args
    data = call.data
    only_keys(data, {"values", "remove", "hvidate", "acceptance", "messages"})
    values = _typed(data, "values", dict)
    remove = _typed(data, "remove", list)
    hvidate = _typed(data, "hvidate", str)
    acceptance = _typed(data, "acceptance", dict)
    messages = _typed(data, "messages", list)
    return 200, call.simulator.update_hospital(
        hpid, values, remove or (), hvidate, acceptance, messages
    )


def _fault_list(call: _Call) -> tuple[int, object]:
    return 200, {"faults": call.simulator.faults()}


def _fault_add(call: _Call) -> tuple[int, object]:
    only_keys(
        call.data, {"mode", "operations", "regions", "calls", "seconds", "missing", "variant"}
    )
    if "mode" not in call.data:
        raise ControlError("mode is required")
    return 201, call.simulator.add_fault(**call.data)


def _faults_clear(call: _Call) -> tuple[int, object]:
    return 200, {"removed": call.simulator.clear_faults()}


def _fault_clear(call: _Call) -> tuple[int, object]:
    (fault_id,) = call.args
    if not fault_id.isdigit():
        raise ControlError("fault id must be an integer")
    if not call.simulator.clear_faults(int(fault_id)):
        raise ControlError(f"no fault {fault_id}", status=404)
    return 200, {"removed": 1}


def _walk_set(call: _Call) -> tuple[int, object]:
    data = call.data
    only_keys(data, {"interval", "fraction"})
    for key in ("interval", "fraction"):
        if key in data and not is_number(data[key]):
            raise ControlError(f"{key} must be a number")
    try:
        call.simulator.set_walk(data.get("interval"), data.get("fraction"))
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    return 200, call.simulator.walk_settings()


def _walk_step(call: _Call) -> tuple[int, object]:
    return 200, {"changed": sorted(call.simulator.walk_step())}


def _stats(call: _Call) -> tuple[int, object]:
    return 200, call.simulator.stats()


def _stats_reset(call: _Call) -> tuple[int, object]:
    call.simulator.reset_stats()
    return 200, call.simulator.stats()


# (method, path below /_control/ with ``*`` for one segment) → handler.
_ROUTES: Final[Mapping[tuple[str, str], _Handler]] = {
    ("GET", "health"): _health,
    ("GET", "hospitals"): _hospital_list,
    ("GET", "hospitals/*"): _hospital,
    ("PUT", "hospitals/*"): _hospital_update,
    ("GET", "faults"): _fault_list,
    ("POST", "faults"): _fault_add,
    ("DELETE", "faults"): _faults_clear,
    ("DELETE", "faults/*"): _fault_clear,
    ("POST", "walk"): _walk_set,
    ("POST", "walk/step"): _walk_step,
    ("GET", "stats"): _stats,
    ("DELETE", "stats"): _stats_reset,
}


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _typed(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise ControlError(f"{key} must be a {kind.__name__}")
    return value
