"""``python -m ingestion.simulator``: see ``ingestion.simulator.cli``."""

import sys

from ingestion.simulator.cli import main

sys.exit(main())
