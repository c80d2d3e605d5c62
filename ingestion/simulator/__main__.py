"""``python -m ingestion.simulator``: see ``ingestion.simulator.main``."""

import sys

from ingestion.simulator import main

sys.exit(main())
