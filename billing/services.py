"""The usage ledger. Other apps tell billing what happened through these functions only."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing.models import UsageEvent
from tenants.models import Tenant


def usage_net(*, tenant: Tenant, kind: str, reference: str) -> int:
    total = (
        UsageEvent.objects.for_tenant(tenant)
        .filter(kind=kind, reference=reference)
        .aggregate(n=Sum("quantity"))["n"]
    )
    return int(total or 0)


def usage_set(
    *, tenant: Tenant, kind: str, reference: str, billable: bool, at: datetime, reason: str = ""
) -> UsageEvent | None:
    """Make `reference` count once (billable) or not at all, by appending a usage event or its
    reversal. Nothing is appended when the ledger already says so, so running this twice, or
    twice at once, changes the ledger once. Returns the event appended, if any."""
    with transaction.atomic():
        events = list(
            UsageEvent.objects.for_tenant(tenant)
            .filter(kind=kind, reference=reference)
            .order_by("created_at", "id")
        )
        net = sum(event.quantity for event in events)
        if billable == (net > 0):
            return None
        # The key numbers each change of this reference, so a concurrent duplicate collides.
        fields = {
            "tenant": tenant,
            "kind": kind,
            "reference": reference,
            "idempotency_key": f"{reference}#{len(events) + 1}",
            "occurred_at": at,
            "reason": reason,
        }
        try:
            with transaction.atomic():
                if billable:
                    return UsageEvent.objects.create(quantity=1, **fields)
                last = next(e for e in reversed(events) if e.quantity > 0)
                return UsageEvent.objects.create(quantity=-1, reverses=last, **fields)
        except IntegrityError:
            return None  # the same change, made at the same moment by a duplicate run
