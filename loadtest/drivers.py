"""What makes events happen during a load run, one ``send()`` per event.

``PublishDriver`` publishes straight through the one publishing path; ``SimulatorDriver`` sets
an exact value on the upstream simulator's control API and leaves the rest to the deployment's
own ingestion (latency then includes its polling interval).
"""

import json
import os
from typing import Protocol
from urllib.request import Request, urlopen


class Driver(Protocol):
    def send(self) -> int:
        """Cause one event; its sequence number when known here (publishing), else 0."""
        ...


class PublishDriver:
    """Publish ``beds.changed`` events straight through the publishing path (operators only:
    it needs the deployment's Redis and settings)."""

    def __init__(self, stream: str) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        from realtime.publishing import publish_event

        self._publish = publish_event
        self._stream = stream
        self._n = 0

    def send(self) -> int:
        self._n += 1
        data = {
            "hpid": "LOADTEST",
            "changes": {"er_general": {"old": self._n - 1, "new": self._n}},
            "hvidate": None,
            "padding": "x" * 120,
        }
        return self._publish(self._stream, "beds.changed", data)


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
