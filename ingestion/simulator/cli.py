"""The command line, ``python -m ingestion.simulator``: serve until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from ingestion.simulator.server import CONTROL_PATH, SimulatorServer
from ingestion.simulator.state import DEFAULT_SEED, DEFAULT_SERVICE_KEY, Simulator


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: serve until interrupted (Ctrl-C or SIGTERM), then return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.simulator",
        description="An HTTP simulator of the NEMC open API (ErmctInfoInqireService).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--walk-interval", type=float, default=5.0, help="seconds; 0 disables")
    parser.add_argument("--change-fraction", type=float, default=0.1)
    parser.add_argument("--service-key", default=DEFAULT_SERVICE_KEY)
    parser.add_argument(
        "--quiet", action="store_true", help="no line per request (bin/start: 17 every 5 s)"
    )
    args = parser.parse_args(argv)
    try:
        simulator = Simulator(
            args.seed, args.walk_interval, args.change_fraction, service_key=args.service_key
        )
    except ValueError as exc:
        parser.error(str(exc))
    server = SimulatorServer((args.host, args.port), simulator, quiet=args.quiet)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    simulator.start()
    sys.stderr.write(
        f"NEMC simulator: {len(simulator.hospital_list())} hospitals at {server.api_url}/"
        f"<operation>, control at {server.base_url}{CONTROL_PATH} (seed {args.seed})\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("NEMC simulator: stopping\n")
    finally:
        simulator.close()
        server.server_close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
