"""Logging filters named in ``settings.LOGGING``."""

import logging


class QuietRoutineTasks(logging.Filter):
    """Drop Celery's INFO lines about the tasks beat runs every second or so (sent, received,
    succeeded), keeping their warnings and errors and every line about other tasks."""

    ROUTINE = ("outbox.relay", "relay-outbox")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.ROUTINE)
