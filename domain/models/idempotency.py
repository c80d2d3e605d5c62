from django.db import models
from django.db.models import Q


class IdempotentRequest(models.Model):
    """The remembered answer to a request sent with an ``Idempotency-Key``: a client that retries
    it (a tablet resending what it queued offline) gets this answer again instead of a second
    effect. One row per user and key, enforced by the database, which is also what makes two
    concurrent requests with one key wait for each other (domain.services.idempotency).

    Rows are written in the transaction of the request they answer, so a committed row always
    has its answer; they are deleted once older than ``IDEMPOTENCY_KEY_SECONDS``.
    """

    user = models.ForeignKey(
        "domain.User", on_delete=models.CASCADE, related_name="idempotent_requests"
    )
    key = models.CharField(max_length=200, help_text="1–200 printable ASCII characters.")
    operation = models.CharField(max_length=64, help_text="What the key was used for.")
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the operation and its canonical request body."
    )
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Null only inside the transaction that claims the key."
    )
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_key_per_user"),
            models.CheckConstraint(condition=~Q(key=""), name="idempotent_request_key_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key} → {self.status_code}"
