from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from tenants.ids import PublicIdField
from tenants.models import AppendOnlyQuerySet, TenantManager, TenantOwnedModel


class UsageEvent(TenantOwnedModel):
    """One line of the usage ledger: +1 for a billable unit, -1 for its reversal.

    Rows are never changed or deleted; a correction is a new row. `idempotency_key` is unique per
    tenant and kind, so recording the same unit twice (a retried task) adds nothing.
    """

    class Kind(models.TextChoices):
        RESOLVED_CONVERSATION = "resolved_conversation"

    public_id = PublicIdField("use")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    quantity = models.SmallIntegerField()
    # What was billed, by public id (a call's `call_…`): billing imports nothing of calls.
    reference = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=128)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField()
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    all_tenants: ClassVar[models.Manager[Any]] = AppendOnlyQuerySet.as_manager()
    objects: ClassVar[TenantManager[Any]] = TenantManager.from_queryset(AppendOnlyQuerySet)()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="usageevent_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "kind", "idempotency_key"], name="usageevent_once"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "kind", "reference"], name="usage_by_reference"),
            models.Index(fields=["tenant", "-occurred_at"], name="usage_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d} {self.reference}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("UsageEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("UsageEvent rows are append-only")
