"""Mirroring the ledger and invoices to Stripe, and reading back what Stripe counted.

The ledger is the source of truth; Stripe gets a copy. Every write carries our own idempotency
key, derived from the row it mirrors, so a retried task (or a retried request) never creates
anything twice. Without `STRIPE_SECRET_KEY` nothing here runs and billing stays internal.
"""

import logging
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings
from django.utils import timezone

from billing.models import (
    CreditNote,
    Invoice,
    Meter,
    MeterReport,
    Reconciliation,
    Subscription,
    UsageEvent,
)
from billing.services import subscription_for, usage_totals
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE or None
    addresses: Any = {"api": base, "meter_events": base} if base else {}
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=addresses,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def customer_for(stripe_client: stripe.StripeClient, subscription: Subscription) -> str:
    """The tenant's Stripe customer, created the first time it is needed."""
    if subscription.stripe_customer:
        return subscription.stripe_customer
    tenant = subscription.tenant
    params: Any = {"name": tenant.name, "metadata": {"tenant": tenant.public_id}}
    if subscription.billing_email:
        params["email"] = subscription.billing_email
    customer = stripe_client.v1.customers.create(
        params, {"idempotency_key": f"customer-{tenant.public_id}"}
    )
    Subscription.objects.for_tenant(tenant).filter(pk=subscription.pk).update(
        stripe_customer=customer.id
    )
    subscription.stripe_customer = customer.id
    return customer.id


def meter_ids(stripe_client: stripe.StripeClient) -> dict[str, str]:
    """Stripe's meter id for each of our meters, creating the meters that are missing. A
    meter's `event_name` is our meter's name; it sums the events' values per customer."""
    found = {
        meter.event_name: meter.id
        for meter in stripe_client.v1.billing.meters.list({"status": "active", "limit": 100})
    }
    for name, label in Meter.choices:
        if name not in found:
            created = stripe_client.v1.billing.meters.create(
                {
                    "display_name": str(label),
                    "event_name": name,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {
                        "type": "by_id",
                        "event_payload_key": "stripe_customer_id",
                    },
                    "value_settings": {"event_payload_key": "value"},
                },
                {"idempotency_key": f"meter-{name}"},
            )
            found[name] = created.id
    return found


def report_usage(tenant: Tenant, *, limit: int = 500) -> int:
    """Send the tenant's unreported usage events to Stripe's meters, oldest first. The
    identifier is the event's public id, so Stripe drops a repeat. Returns how many were sent."""
    subscription = subscription_for(tenant)
    stripe_client = client()
    customer = customer_for(stripe_client, subscription)
    events = list(
        UsageEvent.objects.for_tenant(tenant)
        .filter(stripe_reports__isnull=True)
        .order_by("id")[:limit]
    )
    horizon = timezone.now() - settings.STRIPE_METER_EVENT_MAX_AGE
    for event in events:
        # Stripe takes timestamps up to 35 days old; older usage is stamped with the oldest
        # accepted time (it is still billed through our invoices, which Stripe mirrors).
        at = max(event.occurred_at, horizon)
        stripe_client.v1.billing.meter_events.create(
            {
                "event_name": event.meter,
                "payload": {"stripe_customer_id": customer, "value": str(event.quantity)},
                "identifier": event.public_id,
                "timestamp": int(at.timestamp()),
            },
            {"idempotency_key": f"meter-event-{event.public_id}"},
        )
        MeterReport.objects.create(tenant=tenant, event=event, customer=customer)
    return len(events)


def sync_tenant(tenant: Tenant) -> int:
    """Report new usage, then mirror the issued invoices and credit notes Stripe lacks (a
    first attempt lost, or one that failed). Returns how many usage events were reported."""
    reported = report_usage(tenant)
    for invoice in (
        Invoice.objects.for_tenant(tenant)
        .filter(stripe_invoice="")
        .exclude(status__in=[Invoice.Status.DRAFT, Invoice.Status.VOID])
    ):
        sync_invoice(invoice)
    for note in (
        CreditNote.objects.for_tenant(tenant)
        .filter(stripe_credit_note="", amount__gt=0)
        .exclude(invoice__stripe_invoice="")
    ):
        sync_credit_note(note)
    return reported


def sync_invoice(invoice: Invoice) -> None:
    """Create the invoice in Stripe with one item per non-zero line, and finalize it there."""
    if invoice.stripe_invoice:
        return
    stripe_client = client()
    customer = customer_for(stripe_client, subscription_for(invoice.tenant))
    key = f"invoice-{invoice.public_id}"
    metadata = {"tenant": invoice.tenant.public_id, "invoice": invoice.public_id}
    try:
        remote = stripe_client.v1.invoices.create(
            {
                "customer": customer,
                "currency": invoice.currency,
                "collection_method": "send_invoice",
                "days_until_due": settings.BILLING_DAYS_UNTIL_DUE,
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "metadata": metadata,
            },
            {"idempotency_key": key},
        )
        for line in invoice.lines.all():
            if line.amount == 0:
                continue
            stripe_client.v1.invoice_items.create(
                {
                    "customer": customer,
                    "invoice": remote.id,
                    "amount": line.amount,
                    "currency": invoice.currency,
                    "description": line.description,
                    "metadata": {**metadata, "line": str(line.position)},
                },
                {"idempotency_key": f"{key}-line-{line.position}"},
            )
        stripe_client.v1.invoices.finalize_invoice(
            remote.id, {}, {"idempotency_key": f"{key}-finalize"}
        )
    except stripe.StripeError as exc:
        Invoice.objects.for_tenant(invoice.tenant).filter(pk=invoice.pk).update(
            stripe_error=str(exc)[:1000]
        )
        raise
    Invoice.objects.for_tenant(invoice.tenant).filter(pk=invoice.pk).update(
        stripe_invoice=remote.id, stripe_error=""
    )
    invoice.stripe_invoice, invoice.stripe_error = remote.id, ""


def sync_credit_note(note: CreditNote) -> None:
    """Issue the credit note against the Stripe invoice it reduces."""
    invoice = note.invoice
    if note.stripe_credit_note or note.amount == 0 or not invoice.stripe_invoice:
        return
    params: Any = {
        "invoice": invoice.stripe_invoice,
        "lines": [
            {
                "type": "custom_line_item",
                "description": note.reason,
                "quantity": 1,
                "unit_amount": note.amount,
            }
        ],
        "metadata": {"tenant": note.tenant.public_id, "credit_note": note.public_id},
    }
    if invoice.status == Invoice.Status.PAID:
        # Nothing is left to pay: the credit goes to the customer's balance, for the next one.
        params["credit_amount"] = note.amount
    try:
        remote = client().v1.credit_notes.create(
            params, {"idempotency_key": f"credit-note-{note.public_id}"}
        )
    except stripe.StripeError as exc:
        CreditNote.objects.for_tenant(note.tenant).filter(pk=note.pk).update(
            stripe_error=str(exc)[:1000]
        )
        raise
    CreditNote.objects.for_tenant(note.tenant).filter(pk=note.pk).update(
        stripe_credit_note=remote.id, stripe_error=""
    )


def reconcile(tenant: Tenant, start: datetime, end: datetime) -> list[Reconciliation]:
    """Compare the ledger's net units for [start, end) with what Stripe's meters summed for the
    tenant's customer, keep the result, and warn when they differ."""
    subscription = subscription_for(tenant)
    if not subscription.stripe_customer:
        return []
    stripe_client = client()
    ids = meter_ids(stripe_client)
    ledger = usage_totals(tenant, start, end)
    results = []
    for meter in Meter.values:
        summaries = stripe_client.v1.billing.meters.event_summaries.list(
            ids[meter],
            {
                "customer": subscription.stripe_customer,
                "start_time": int(start.timestamp()),
                "end_time": int(end.timestamp()),
            },
        )
        counted = round(sum(s.aggregated_value for s in summaries.auto_paging_iter()))
        result, _ = Reconciliation.objects.for_tenant(tenant).update_or_create(
            tenant=tenant,
            meter=meter,
            period_start=start,
            defaults={
                "period_end": end,
                "ledger_quantity": ledger.get(meter, 0),
                "stripe_quantity": counted,
                "checked_at": timezone.now(),
            },
        )
        if result.drift:
            logger.warning(
                "Stripe's meter disagrees with the ledger",
                extra={
                    "tenant_id": tenant.public_id,
                    "meter": meter,
                    "ledger": result.ledger_quantity,
                    "stripe": result.stripe_quantity,
                },
            )
        results.append(result)
    return results
