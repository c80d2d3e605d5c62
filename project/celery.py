"""Celery application, configured from Django settings under the ``CELERY_`` namespace.

The worker and beat log through Django's ``settings.LOGGING`` (``LOG_FORMAT``'s line format and
its filters, ``project.logfilters``), not through Celery's own set-up, which would replace the
root logger's handlers and write its own format: with a ``setup_logging`` receiver connected,
Celery configures no logging at all. Under ``LOG_FORMAT=json`` what the worker and beat print
rather than log (their startup banners, the worker's notice of a warm shutdown) is left out or
logged instead, so that every line is JSON (monitoring/README.md, "Logs").
"""

import functools
import logging
import logging.config
import os
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

if TYPE_CHECKING:
    from celery.apps.beat import Beat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class WeerCelery(Celery):
    @functools.cached_property
    def Beat(self) -> "type[Beat]":
        """``celery beat``'s program, quiet (no banner) under ``LOG_FORMAT=json``: it prints
        its banner before any signal is sent, so no hook could leave it out later."""
        from celery.apps.beat import Beat
        from django.conf import settings

        class JsonQuietBeat(Beat):
            def __init__(self, **options: Any) -> None:  # celery beat passes keywords only
                options["quiet"] = options.get("quiet") or settings.LOG_FORMAT == "json"
                super().__init__(**options)

        beat: type[Beat] = self.subclass_with_self(JsonQuietBeat)
        return beat


app = WeerCelery("weer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _django_logging() -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    # Warnings (Celery's own at start-up included) become log lines in the same format.
    logging.captureWarnings(True)


@signals.celeryd_init.connect
def _worker_starting(instance: Any, **kwargs: Any) -> None:
    """The first hook of a starting worker, before it warns or prints anything: log in the
    configured format from here on, and print no banner among JSON lines."""
    from django.conf import settings

    _django_logging()
    if settings.LOG_FORMAT == "json":
        # celery.apps.worker.Worker prints its banner unless quiet (-q) and reads this flag
        # only later, in on_start (tests/test_logging.py runs a real worker without -q).
        instance.quiet = True


@signals.setup_logging.connect
def _keep_django_logging(**kwargs: Any) -> None:
    """Celery's worker and beat, and every other ``celery`` command that sets up logging:
    Django's ``settings.LOGGING``. Connecting this turns off Celery's own set-up, its stdout
    redirection too, which is kept: what a task prints becomes a ``celery.redirected`` line
    (``worker_redirect_stdouts``), not a stray line among JSON ones."""
    _django_logging()
    if app.conf.worker_redirect_stdouts:
        app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)


@signals.worker_ready.connect
def _worker_ready(sender: Any, **kwargs: Any) -> None:
    """Under ``LOG_FORMAT=json``, the SIGTERM handler Celery installed in ``on_start`` again,
    without the notice it writes straight to stdout (``_worker_shutting_down`` logs it)."""
    # Not in celery-types' stubs; celery.apps.worker defines it for every platform.
    from celery.apps.worker import install_worker_term_handler  # type: ignore[attr-defined]
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        install_worker_term_handler(sender.controller, verbose=False)


@signals.worker_shutting_down.connect
def _worker_shutting_down(sig: str, how: str, **kwargs: Any) -> None:
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        logging.getLogger("celery.apps.worker").info("worker: %s shutdown (%s)", how, sig)
