"""An HTTP simulator of the NEMC open API (ErmctInfoInqireService), with a JSON control API.

Run it with ``python -m ingestion.simulator --port 8001``; point ``UPSTREAM_BASE_URL`` at
``http://127.0.0.1:8001/B552657/ErmctInfoInqireService`` and ``UPSTREAM_SERVICE_KEY`` at the
``--service-key`` (default ``simulator-key``).

It speaks the upstream's real XML: the ``<response><header>…</header><body>…</body></response>``
envelope, children of ``<item>`` sorted by plain string comparison of their tag names (uppercase
first, ``hv10`` before ``hv5``), absent tags for unknown values, ``Y``/``N1`` flags, ``<items/>``
for an empty page, the data.go.kr gateway envelope for a bad key and plain ``Unauthorized`` (401)
for a missing one. The hospitals are the project's demo hospitals (``domain.demo_data``); their
bed values are generated deterministically from a seed and then move in a background random walk.

Layout, from the bottom up (each module imports only those above it, except that ``state``
hands control calls to ``control``, which knows ``Simulator`` only as a type):

* ``protocol``: the operation names, flags, dates and ``Reply`` (an answer before HTTP);
* ``rendering``: the upstream's XML, pure (strings in, strings out; no state);
* ``hospitals``: a hospital's state (``Hospital``, ``Message``) and the value tags;
* ``generation``: a hospital's initial values from the seed, and the walk's moves;
* ``records``: the row each operation answers for a hospital, and pages of rows;
* ``validation``: ``ControlError`` and the checks of control input;
* ``faults``: fault modes, which calls they hit and what they do to an answer;
* ``queries``: an API call's parameters checked, and the hospitals it is about;
* ``state``: ``Simulator``, the state behind one lock; ``Simulator.respond`` answers one API
  call and ``Simulator.control`` one control call, both without any HTTP;
* ``control``: the control API (documented there), a table of routes to handlers;
* ``server``: ``SimulatorServer`` / ``SimulatorHandler``, the thin HTTP layer, and
  ``start_simulator`` / ``running_simulator`` for tests;
* ``cli``: ``main`` for the command line (``__main__`` runs it).

Other code imports from ``ingestion.simulator`` itself, which re-exports the names in
``__all__`` (every public name of the single module this package replaced).
"""

from ingestion.simulator.cli import main
from ingestion.simulator.faults import (
    BAD_RECORD_VARIANTS,
    DEFAULT_TIMEOUT_SECONDS,
    FAULT_MODES,
    Fault,
)
from ingestion.simulator.generation import (
    ACCEPTANCE_VALUES,
    AGE_LIMITED_CATEGORIES,
    AGE_TEXTS,
    ER_MESSAGES,
    SEVERE_MESSAGES,
)
from ingestion.simulator.hospitals import VALUE_TAGS, Hospital, Message, Value
from ingestion.simulator.protocol import (
    ACCEPTANCE,
    BASIC_INFO,
    BEDS,
    DATE_FORMAT,
    FLAG_NO,
    FLAG_YES,
    INSTITUTIONS,
    JSON_CONTENT_TYPE,
    KST,
    MESSAGES,
    OPERATIONS,
    TEXT_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    Reply,
    format_date,
    parse_date,
)
from ingestion.simulator.rendering import (
    XML_DECLARATION,
    Fields,
    cut_in_element,
    paginate,
    render_gateway_error,
    render_item,
    render_page,
    render_result,
)
from ingestion.simulator.server import (
    BASE_PATH,
    CONTROL_PATH,
    SimulatorHandler,
    SimulatorServer,
    running_simulator,
    start_simulator,
    stop_simulator,
)
from ingestion.simulator.state import DEFAULT_SEED, DEFAULT_SERVICE_KEY, Simulator
from ingestion.simulator.validation import ControlError

__all__ = [
    "ACCEPTANCE",
    "ACCEPTANCE_VALUES",
    "AGE_LIMITED_CATEGORIES",
    "AGE_TEXTS",
    "BAD_RECORD_VARIANTS",
    "BASE_PATH",
    "BASIC_INFO",
    "BEDS",
    "CONTROL_PATH",
    "DATE_FORMAT",
    "DEFAULT_SEED",
    "DEFAULT_SERVICE_KEY",
    "DEFAULT_TIMEOUT_SECONDS",
    "ER_MESSAGES",
    "FAULT_MODES",
    "FLAG_NO",
    "FLAG_YES",
    "INSTITUTIONS",
    "JSON_CONTENT_TYPE",
    "KST",
    "MESSAGES",
    "OPERATIONS",
    "SEVERE_MESSAGES",
    "TEXT_CONTENT_TYPE",
    "VALUE_TAGS",
    "XML_CONTENT_TYPE",
    "XML_DECLARATION",
    "ControlError",
    "Fault",
    "Fields",
    "Hospital",
    "Message",
    "Reply",
    "Simulator",
    "SimulatorHandler",
    "SimulatorServer",
    "Value",
    "cut_in_element",
    "format_date",
    "main",
    "paginate",
    "parse_date",
    "render_gateway_error",
    "render_item",
    "render_page",
    "render_result",
    "running_simulator",
    "start_simulator",
    "stop_simulator",
]
