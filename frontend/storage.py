"""The static files storage of production: WhiteNoise's compressed, content-hashed files, with a
missing file linked by its plain name instead of breaking the page that links it."""

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)


class StaticStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """``collectstatic`` writes each file under a name with its hash (cached for a year by
    browsers and the service worker) and gzips it; ``{% static %}`` links the hashed name.

    Django's manifest storage raises ``ValueError`` while rendering a template that links a file
    it has not collected. The pages' bundle (``frontend/dist/``) is built by ``npm run build``,
    which a Python-only deployment or test run may not have done; failing every page that links
    it (the log-in page included) would turn a missing script into a site-wide 500. Instead the
    link keeps the plain name (the browser gets a 404 for that one file) and a warning names the
    file and the fix.
    """

    def stored_name(self, name: str) -> str:
        try:
            stored: str = super().stored_name(name)
        except ValueError:
            logger.warning(
                "Static file %r was not collected (run `npm run build`, then "
                "`manage.py collectstatic`); linking it unhashed.",
                name,
            )
            return name
        return stored
