"""The usage ledger. Other apps tell billing what happened through these functions only."""

from datetime import datetime

from django.db import IntegrityError, transaction

from billing.models import UsageEvent
from tenants.models import Tenant


def usage_set(
    *, tenant: Tenant, kind: str, reference: str, billable: bool, at: datetime, reason: str = ""
) -> UsageEvent | None:
    """Make `reference` count once (billable) or not at all, by appending a usage event or its
    reversal. Nothing is appended when the ledger already agrees, so running this twice, or
    twice at once, changes the ledger once. Returns the event appended, if any."""
    appended = usage_set_many(tenant=tenant, kind=kind, wanted={reference: (billable, at, reason)})
    return appended[0] if appended else None


def usage_set_many(
    *, tenant: Tenant, kind: str, wanted: dict[str, tuple[bool, datetime, str]]
) -> list[UsageEvent]:
    """`usage_set` for many references at once: two queries whatever their number."""
    history: dict[str, list[UsageEvent]] = {reference: [] for reference in wanted}
    for event in (
        UsageEvent.objects.for_tenant(tenant)
        .filter(kind=kind, reference__in=list(wanted))
        .order_by("created_at", "id")
    ):
        history[event.reference].append(event)
    rows = []
    for reference, (billable, at, reason) in wanted.items():
        events = history[reference]
        if billable == (sum(e.quantity for e in events) > 0):
            continue
        # The key numbers each change of this reference, so a concurrent duplicate collides.
        fields = {
            "tenant": tenant,
            "kind": kind,
            "reference": reference,
            "idempotency_key": f"{reference}#{len(events) + 1}",
            "occurred_at": at,
            "reason": reason[:255],
        }
        if billable:
            rows.append(UsageEvent(quantity=1, **fields))
        else:
            last = next(e for e in reversed(events) if e.quantity > 0)
            rows.append(UsageEvent(quantity=-1, reverses=last, **fields))
    if not rows:
        return []
    try:
        with transaction.atomic():
            return UsageEvent.all_tenants.bulk_create(rows)
    except IntegrityError:
        # A duplicate run made some of these changes at the same moment: keep the others.
        appended = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
                appended.append(row)
            except IntegrityError:
                continue
        return appended
