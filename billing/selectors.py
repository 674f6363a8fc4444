"""Reads for finance: the account's standing, previews, and the ledger behind each line."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from billing import services
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    Meter,
    MeterReport,
    Plan,
    UsageEvent,
)
from billing.money import format_amount
from billing.pricing import Draft, charge
from tenants.models import Tenant

INTERNAL_NOTE = (
    "Stripe is not configured (no STRIPE_SECRET_KEY): invoices are issued here only; "
    "collect payment outside the product and mark invoices paid in the admin."
)
STRIPE_NOTE = "Invoices and usage are mirrored to Stripe, which collects payment."


def with_report_state(events: QuerySet[Any]) -> QuerySet[Any]:
    """Annotate `reported`: whether the event went to Stripe's meter."""
    return events.annotate(reported=Exists(MeterReport.all_tenants.filter(event=OuterRef("pk"))))


def _slice(meter: str, start: datetime, end: datetime, after: int, through: int) -> Q:
    """A slice of the ledger as lines and credit notes name it: one meter's events that
    occurred in [start, end), by id in (after, through]."""
    return Q(
        meter=meter,
        occurred_at__gte=start,
        occurred_at__lt=end,
        id__gt=after,
        id__lte=through,
    )


def lines_events(lines: list[InvoiceLine]) -> QuerySet[Any] | None:
    """The union of several lines' slices (None when there is no usage line)."""
    if not lines:
        return None
    condition = Q()
    for line in lines:
        condition |= _slice(
            line.meter, line.period_start, line.period_end, line.events_after, line.events_through
        )
    return UsageEvent.objects.for_tenant(lines[0].tenant).filter(condition)


def invoice_usage_events(invoice: Invoice, position: int | None = None) -> QuerySet[Any] | None:
    """The usage events an invoice charges, or only its line at `position` (None when there is
    no usage line there)."""
    lines = InvoiceLine.objects.for_tenant(invoice.tenant).filter(invoice=invoice).exclude(meter="")
    if position is not None:
        lines = lines.filter(position=position)
    return lines_events(list(lines))


def credit_note_events(note: CreditNote) -> QuerySet[Any]:
    invoice = note.invoice
    return UsageEvent.objects.for_tenant(note.tenant).filter(
        _slice(
            note.meter,
            invoice.period_start,
            invoice.period_end,
            note.events_after,
            note.events_through,
        )
    )


def in_current_period(events: QuerySet[Any], tenant: Tenant) -> QuerySet[Any]:
    """The events that occurred in the tenant's current billing period."""
    period = services.period_at(services.subscription_for(tenant), timezone.now())
    return events.filter(occurred_at__gte=period.start, occurred_at__lt=period.end)


def public_plans() -> QuerySet[Plan]:
    """The plans owners may choose, with their prices."""
    return Plan.objects.filter(is_public=True).prefetch_related("prices").order_by("code")


def _line(position: int, line: InvoiceLine | Draft, usage_url: str | None) -> dict[str, Any]:
    """An invoice line, or a preview's draft line, as the API shows it."""
    return {
        "position": position,
        "kind": line.kind,
        "meter": line.meter,
        "description": line.description,
        "quantity": line.quantity,
        "unit_amount": line.unit_amount,
        "amount": line.amount,
        "usage_url": usage_url if line.meter else None,
    }


def line_data(invoice: Invoice, line: InvoiceLine) -> dict[str, Any]:
    usage = f"/v1/billing/invoices/{invoice.public_id}/usage?line={line.position}"
    return _line(line.position, line, usage)


def usage_summary(events: QuerySet[Any], group_by: str) -> list[dict[str, Any]]:
    """Net units and event counts per meter and day, agent or version."""
    key = TruncDay("occurred_at") if group_by == "day" else F(group_by)
    rows = (
        events.order_by()
        .annotate(key=key)
        .values("key", "meter")
        .annotate(quantity=Sum("quantity"), events=Count("id"))
        .order_by("key", "meter")
    )
    return [
        {
            group_by: row["key"].date().isoformat() if group_by == "day" else row["key"],
            "meter": row["meter"],
            "quantity": row["quantity"],
            "events": row["events"],
        }
        for row in rows
    ]


def _per_unit(total: int, units: int) -> int | None:
    return (2 * total + units) // (2 * units) if units > 0 else None


def cost_per_resolution(invoice: Invoice) -> int | None:
    """What the period's resolved conversations cost each, after credits and late usage,
    rounded half up to a minor unit."""
    units = invoice.quantities.get(Meter.RESOLVED_CONVERSATION, 0)
    return _per_unit(charge(invoice.pricing, invoice.quantities).total, units)


def preview_data(tenant: Tenant) -> dict[str, Any]:
    period, pricing, bill = services.preview(tenant)
    units = sum(line.quantity for line in bill.lines if line.meter == Meter.RESOLVED_CONVERSATION)
    return {
        "period_start": period.start,
        "period_end": period.end,
        "trial": period.trial,
        "plan": pricing["plan"],
        "currency": pricing["currency"],
        "cost_per_resolution": _per_unit(bill.total, units),
        "lines": [
            _line(n, draft, f"/v1/billing/usage?period=current&meter={draft.meter}")
            for n, draft in enumerate(bill.lines, 1)
        ],
        "subtotal": bill.subtotal,
        "discount": bill.discount,
        "total": bill.total,
        "total_formatted": format_amount(bill.total, pricing["currency"]),
    }


def account_data(tenant: Tenant, stripe_enabled: bool) -> dict[str, Any]:
    subscription = services.subscription_for(tenant)
    now = services.standing(tenant)
    return {
        "mode": "stripe" if stripe_enabled else "internal",
        "mode_note": STRIPE_NOTE if stripe_enabled else INTERNAL_NOTE,
        "plan": now.plan.code,
        "next_plan": subscription.next_plan.code if subscription.next_plan else None,
        "next_plan_from": subscription.next_plan_from,
        "currency": now.plan.currency,
        "trial_ends_at": subscription.trial_ends_at,
        "discount_percent": subscription.discount_percent,
        "billing_email": subscription.billing_email,
        "period_start": now.period.start,
        "period_end": now.period.end,
        "usage": now.quantities,
        "spend": now.bill.total,
        "spend_formatted": format_amount(now.bill.total, now.plan.currency),
        "limits": {name: getattr(subscription, name) for name in services.LIMIT_FIELDS},
        "soft_limit_reached": now.soft_reached,
        "hard_limit_reached": now.hard_reached,
        "stripe_customer": subscription.stripe_customer or None,
    }


def invoice_document(invoice: Invoice) -> dict[str, Any]:
    """What the print-ready invoice page shows."""
    lines = list(invoice.lines.all())
    return {
        "invoice": invoice,
        "tenant": invoice.tenant,
        "lines": [
            {
                "line": line,
                "unit": format_amount(line.unit_amount, invoice.currency)
                if line.unit_amount is not None
                else "",
                "amount": format_amount(line.amount, invoice.currency),
            }
            for line in lines
        ],
        "subtotal": format_amount(invoice.subtotal, invoice.currency),
        "discount": format_amount(invoice.discount, invoice.currency),
        "total": format_amount(invoice.total, invoice.currency),
        "credit_notes": [
            (note, format_amount(note.amount, invoice.currency))
            for note in invoice.credit_notes.all()
        ],
    }


USAGE_COLUMNS = [
    "id",
    "meter",
    "quantity",
    "call",
    "agent",
    "version",
    "reason",
    "reverses",
    "occurred_at",
    "recorded_at",
]


def usage_rows(events: QuerySet[Any]) -> Iterator[list[Any]]:
    """The usage ledger's export: a header, then one row per event, read in chunks."""
    yield USAGE_COLUMNS
    for e in events.values_list(
        "public_id",
        "meter",
        "quantity",
        "reference",
        "agent",
        "version",
        "reason",
        "reverses__public_id",
        "occurred_at",
        "recorded_at",
    ).iterator(chunk_size=2000):
        yield [*e[:8], e[8].isoformat(), e[9].isoformat()]


INVOICE_COLUMNS = [
    "invoice",
    "number",
    "position",
    "kind",
    "meter",
    "description",
    "quantity",
    "unit_amount",
    "amount",
    "currency",
    "period_start",
    "period_end",
]


def invoice_rows(invoice: Invoice) -> list[list[Any]]:
    """An invoice's export: a header, then one row per line."""
    return [INVOICE_COLUMNS] + [
        [
            invoice.public_id,
            invoice.number,
            line.position,
            line.kind,
            line.meter,
            line.description,
            line.quantity,
            line.unit_amount,
            line.amount,
            invoice.currency,
            line.period_start.isoformat(),
            line.period_end.isoformat(),
        ]
        for line in invoice.lines.all()
    ]
