"""Which fast paths into daphne, Twisted and autobahn each socket got.

Those paths read private state of the servers (docs/realtime.md, "Server internals"); each has
a portable fallback, taken when an upgrade moved what it reads. Taking one is not an error but
costs speed or memory, so it must not go unseen: every socket's choices are counted per
process (``weer_ws_adapter_sockets`` on ``/metrics``) and each choice is logged the first time
a process makes it, as a warning when it is a fallback.
"""

import logging

from realtime.metrics import ProcessMetrics

logger = logging.getLogger(__name__)

# part → the kind a socket gets when every internal is where the pinned versions keep it.
FAST = {"inbox": "weer", "sink": "twisted", "write": "direct", "handshake": "released"}

_logged: set[tuple[str, str]] = set()


def adapter_used(metrics: ProcessMetrics, part: str, kind: str) -> None:
    metrics.adapters[f"{part}:{kind}"] += 1
    if (part, kind) in _logged:
        return
    _logged.add((part, kind))
    if kind == FAST[part]:
        logger.info("websocket %s: %s", part, kind)
    else:
        logger.warning(
            "websocket %s: fell back to %s (not %s): daphne, Twisted or autobahn changed "
            "what WeER reads (docs/realtime.md, Server internals; constraints.txt)",
            part,
            kind,
            FAST[part],
        )
