"""daphne's access log as Python log lines (logger ``weer.access``) instead of its own NCSA
lines on stdout, so that ``LOG_FORMAT=json`` and the blanking of secrets (``project.logs``)
cover it too, and its level says what is routine.

An HTTP request is a line at INFO; a refused websocket (``WSREJECT``) too. A websocket's
``WSCONNECTING``, ``WSCONNECT`` and ``WSDISCONNECT`` are DEBUG: ten thousand tablets
reconnecting would otherwise write thirty thousand lines (2 % of a connect's CPU,
docs/performance.md), and connections are counted on ``/metrics``."""

import logging
from typing import Any

logger = logging.getLogger("weer.access")

_WEBSOCKET = {
    "connecting": ("WSCONNECTING", logging.DEBUG),
    "rejected": ("WSREJECT", logging.INFO),
    "connected": ("WSCONNECT", logging.DEBUG),
    "disconnected": ("WSDISCONNECT", logging.DEBUG),
}


def log_access(protocol: str, action: str, details: dict[str, Any]) -> None:
    """daphne's ``action_logger`` interface (``Server.log_action``)."""
    client = details.get("client") or "-"
    if protocol == "http" and action == "complete":
        logger.info(
            '%s "%s %s" %s %s',
            client,
            details.get("method"),
            details.get("path"),
            details.get("status"),
            details.get("size"),
        )
    elif protocol == "websocket" and action in _WEBSOCKET:
        word, level = _WEBSOCKET[action]
        logger.log(level, '%s "%s %s"', client, word, details.get("path"))
