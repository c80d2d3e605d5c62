"""The control API: JSON calls below ``/_control/``, answered by ``Simulator``'s public methods.

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ingestion.simulator.protocol import Reply
from ingestion.simulator.validation import ControlError, is_number, only_keys

if TYPE_CHECKING:
    from ingestion.simulator.state import Simulator


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
    parts = path.split("/") if path else []
    data = _json_body(body) if method in ("POST", "PUT") else {}
    match (method, parts):
        case ("GET", ["health"]):
            return 200, simulator.health()
        case ("GET", ["hospitals"]):
            region = parse_qs(query).get("region", [None])[0]
            return 200, {"hospitals": simulator.hospital_list(region)}
        case ("GET", ["hospitals", hpid]):
            try:
                return 200, simulator.hospital(hpid)
            except KeyError:
                raise ControlError(f"unknown hpid {hpid!r}", status=404) from None
        case ("PUT", ["hospitals", hpid]):
            only_keys(data, {"values", "remove", "hvidate", "acceptance", "messages"})
            values = _typed(data, "values", dict)
            remove = _typed(data, "remove", list)
            hvidate = _typed(data, "hvidate", str)
            acceptance = _typed(data, "acceptance", dict)
            messages = _typed(data, "messages", list)
            return 200, simulator.update_hospital(
                hpid, values, remove or (), hvidate, acceptance, messages
            )
        case ("GET", ["faults"]):
            return 200, {"faults": simulator.faults()}
        case ("POST", ["faults"]):
            keys = {"mode", "operations", "regions", "calls", "seconds", "missing", "variant"}
            only_keys(data, keys)
            return 201, simulator.add_fault(**data)
        case ("DELETE", ["faults"]):
            return 200, {"removed": simulator.clear_faults()}
        case ("DELETE", ["faults", fault_id]):
            if not fault_id.isdigit():
                raise ControlError("fault id must be an integer")
            if not simulator.clear_faults(int(fault_id)):
                raise ControlError(f"no fault {fault_id}", status=404)
            return 200, {"removed": 1}
        case ("POST", ["walk"]):
            only_keys(data, {"interval", "fraction"})
            for key in ("interval", "fraction"):
                if key in data and not is_number(data[key]):
                    raise ControlError(f"{key} must be a number")
            try:
                simulator.set_walk(data.get("interval"), data.get("fraction"))
            except ValueError as exc:
                raise ControlError(str(exc)) from None
            return 200, simulator.walk_settings()
        case ("POST", ["walk", "step"]):
            return 200, {"changed": sorted(simulator.walk_step())}
        case ("GET", ["stats"]):
            return 200, simulator.stats()
        case ("DELETE", ["stats"]):
            simulator.reset_stats()
            return 200, simulator.stats()
    raise ControlError(f"no control endpoint {method} /_control/{path}", status=404)


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
