"""``python -m loadtest``: the same as ``weer-loadtest``."""

import sys

from loadtest.cli import main

sys.exit(main())
