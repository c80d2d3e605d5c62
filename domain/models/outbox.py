from django.db import models


class OutboxEvent(models.Model):
    """An event of a committed change that the relay (``domain.services.outbox``) has not yet
    handed to the publisher. Written in the transaction of the change it describes, so an event
    exists exactly when its change committed; deleted once published. Pending rows go out in id
    order, one relay at a time.

    ``data`` is the event's payload as JSON text, encoded as clients receive it (times in UTC),
    so that what is published does not depend on when or where the relay runs.
    """

    id = models.BigAutoField(primary_key=True)
    stream = models.CharField(max_length=64)
    kind = models.CharField(max_length=64)
    data = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.pk} {self.kind} → {self.stream}"

    @property
    def delivery_id(self) -> str:
        """Its identity for de-duplication, unique for all time: the id alone is not, since a
        database restored from a backup (or a replica promoted after a failover) issues ids
        again that Redis has already seen."""
        return f"{self.pk}:{self.created_at:%Y%m%d%H%M%S%f}"
