"""WhiteNoise, serving the collected static files from the web process itself."""

import logging
import os

from whitenoise.middleware import WhiteNoiseMiddleware  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    """``whitenoise.middleware.WhiteNoiseMiddleware``, except that a ``STATIC_ROOT`` not
    collected yet is reported in the log like the other missing-build warnings
    (``frontend.storage``), instead of through Python's ``warnings``: processes that serve no
    static files (the test suite, the API alone) then start without a warning that the test
    suite turns into an error. Nothing else changes."""

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if not self.autorefresh and not os.path.isdir(root):
            logger.warning(
                "No static files at %s: run `manage.py collectstatic` (after `npm run build`).",
                root,
            )
            return
        super().add_files(root, prefix)
