"""Reads for finance: the account's standing, previews, and the ledger behind each line."""

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from billing import services
from billing.models import CreditNote, Invoice, InvoiceLine, Meter, MeterReport, UsageEvent
from billing.money import format_amount
from billing.pricing import Bill, charge
from tenants.models import Tenant

INTERNAL_NOTE = (
    "Stripe is not configured (no STRIPE_SECRET_KEY): invoices are issued here only; "
    "collect payment outside the product and mark invoices paid in the admin."
)
STRIPE_NOTE = "Invoices and usage are mirrored to Stripe, which collects payment."


def with_report_state(events: QuerySet[Any]) -> QuerySet[Any]:
    """Annotate `reported`: whether the event went to Stripe's meter."""
    return events.annotate(reported=Exists(MeterReport.all_tenants.filter(event=OuterRef("pk"))))


def lines_events(lines: list[InvoiceLine]) -> QuerySet[Any] | None:
    """The union of several lines' slices (None when there is no usage line)."""
    if not lines:
        return None
    condition = Q()
    for line in lines:
        condition |= Q(
            meter=line.meter,
            occurred_at__gte=line.period_start,
            occurred_at__lt=line.period_end,
            id__gt=line.events_after,
            id__lte=line.events_through,
        )
    return UsageEvent.objects.for_tenant(lines[0].tenant).filter(condition)


def credit_note_events(note: CreditNote) -> QuerySet[Any]:
    invoice = note.invoice
    return UsageEvent.objects.for_tenant(note.tenant).filter(
        meter=note.meter,
        occurred_at__gte=invoice.period_start,
        occurred_at__lt=invoice.period_end,
        id__gt=note.events_after,
        id__lte=note.events_through,
    )


def line_data(invoice: Invoice, line: InvoiceLine) -> dict[str, Any]:
    return {
        "position": line.position,
        "kind": line.kind,
        "meter": line.meter,
        "description": line.description,
        "quantity": line.quantity,
        "unit_amount": line.unit_amount,
        "amount": line.amount,
        "usage_url": (
            f"/v1/billing/invoices/{invoice.public_id}/usage?line={line.position}"
            if line.meter
            else None
        ),
    }


def _per_unit(total: int, units: int) -> int | None:
    return (2 * total + units) // (2 * units) if units > 0 else None


def cost_per_resolution(invoice: Invoice) -> int | None:
    """What the period's resolved conversations cost each, after credits and late usage,
    rounded half up to a minor unit."""
    units = invoice.quantities.get(Meter.RESOLVED_CONVERSATION, 0)
    return _per_unit(charge(invoice.pricing, invoice.quantities).total, units)


def _bill_data(bill: Bill, currency: str) -> dict[str, Any]:
    return {
        "lines": [
            {
                "position": n,
                "kind": draft.kind,
                "meter": draft.meter,
                "description": draft.description,
                "quantity": draft.quantity,
                "unit_amount": draft.unit_amount,
                "amount": draft.amount,
            }
            for n, draft in enumerate(bill.lines, 1)
        ],
        "subtotal": bill.subtotal,
        "discount": bill.discount,
        "total": bill.total,
        "total_formatted": format_amount(bill.total, currency),
    }


def preview_data(tenant: Tenant) -> dict[str, Any]:
    period, pricing, bill = services.preview(tenant)
    units = sum(line.quantity for line in bill.lines if line.meter == Meter.RESOLVED_CONVERSATION)
    usage = f"/v1/billing/usage?period=current&meter={Meter.RESOLVED_CONVERSATION.value}"
    data = _bill_data(bill, pricing["currency"])
    for line in data["lines"]:
        line["usage_url"] = usage if line["meter"] else None
    return {
        "period_start": period.start,
        "period_end": period.end,
        "trial": period.trial,
        "plan": pricing["plan"],
        "currency": pricing["currency"],
        "cost_per_resolution": _per_unit(bill.total, units),
        **data,
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
