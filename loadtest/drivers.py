"""What makes events happen during a load run, one ``send()`` per event.

``SimulatorDriver`` (``--drive simulator``, the default) sets an exact value on the upstream
simulator's control API and leaves the rest to the deployment's own ingestion (latency then
includes its polling interval). ``PublishDriver`` (``--drive publish``) publishes
``loadtest.tick`` events straight through the one publishing path, to a ``loadtest.<name>``
stream only (docs/protocol.md): nothing else publishes there, so fake events never reach the
streams tablets read.
"""

import json
import os
from typing import Protocol
from urllib.request import Request, urlopen


class Driver(Protocol):
    def send(self) -> int:
        """Cause one event; its sequence number when known here (publishing), else 0."""
        ...


# ``domain.events.loadtest_stream``'s prefix, for checks made before Django is set up (the
# simulator drive never sets it up); PublishDriver checks the stream with the domain's parser.
LOADTEST_PREFIX = "loadtest."
# The ``beds.changed`` events this driver published before had 210–216 bytes of data; a tick
# with this padding has 210–214 (for counters up to 99,999), so figures stay comparable.
PADDING = "x" * 190


class PublishDriver:
    """Publish ``loadtest.tick`` events, ``{"n": <1, 2, …>, "padding": PADDING}``, to
    ``stream`` through the one publishing path (operators only: it needs the deployment's Redis
    and settings). Raises ``ValueError`` if ``stream`` is not a ``loadtest.<name>`` stream, and
    ``redis.RedisError`` from ``send`` if Redis is unreachable."""

    def __init__(self, stream: str) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        from domain.events import LOADTEST_TICK, StreamKind, stream_parse
        from realtime.publishing import publish_event

        parsed = stream_parse(stream)
        if parsed is None or parsed.kind is not StreamKind.LOADTEST:
            raise ValueError(f"{stream!r} is not a loadtest.<name> stream: not publishing there")
        self._publish = publish_event
        self._kind = LOADTEST_TICK
        self._stream = stream
        self._n = 0

    def send(self) -> int:
        self._n += 1
        return self._publish(self._stream, self._kind, {"n": self._n, "padding": PADDING})


class SimulatorDriver:
    """Set an exact value on the upstream simulator; the deployment's ingestion does the rest.
    Raises ``urllib.error.URLError`` when the simulator cannot be reached."""

    def __init__(self, control_url: str, hpid: str) -> None:
        self._url = f"{control_url.rstrip('/')}/_control/hospitals/{hpid}"
        self._n = 0

    def send(self) -> int:
        self._n += 1
        body = json.dumps({"values": {"hvec": self._n % 40}}).encode()
        request = Request(  # noqa: S310 - the operator's own simulator URL
            self._url,
            data=body,
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urlopen(request, timeout=5):  # noqa: S310
            pass
        return 0
