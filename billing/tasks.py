"""Scheduled billing work: closing periods, credit notes, and keeping Stripe's copy current.

Each task is safe to run twice: a period closes once, a credit note covers a slice of the ledger
once, and every Stripe write carries an idempotency key derived from the row it mirrors.
"""

import logging
from functools import partial

import stripe
from celery import shared_task
from django.db import transaction

from billing import services, stripe_sync
from billing.models import CreditNote, Invoice, Subscription
from tenants.models import Tenant
from tenants.rls import rls_bypass, tenant_context, tenant_lookup

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=3000, soft_time_limit=2900)
def close_due_periods() -> int:
    """Invoice every ended period, then issue credit notes for reversals on earlier invoices."""
    issued = 0
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            for period in services.periods_due(tenant):
                invoice = services.period_close(tenant, period)
                issued += 1
                if stripe_sync.enabled():
                    transaction.on_commit(partial(sync_invoice.delay, invoice.pk))
            notes = services.settle(tenant)
        for note in notes:
            if stripe_sync.enabled():
                sync_credit_note.delay(note.pk)
    return issued


@shared_task(
    acks_late=True,
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError),
    retry_backoff=True,
    max_retries=8,
    time_limit=300,
)
def sync_invoice(invoice_id: int) -> None:
    with tenant_lookup("invoice to send to Stripe"):
        invoice = Invoice.all_tenants.select_related("tenant").get(pk=invoice_id)
    with tenant_context(invoice.tenant):
        stripe_sync.sync_invoice(invoice)
        for note in CreditNote.objects.for_tenant(invoice.tenant).filter(
            invoice=invoice, stripe_credit_note=""
        ):
            stripe_sync.sync_credit_note(note)


@shared_task(
    acks_late=True,
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError),
    retry_backoff=True,
    max_retries=8,
    time_limit=300,
)
def sync_credit_note(note_id: int) -> None:
    with tenant_lookup("credit note to send to Stripe"):
        note = CreditNote.all_tenants.select_related("tenant", "invoice").get(pk=note_id)
    with tenant_context(note.tenant):
        stripe_sync.sync_credit_note(note)


@shared_task(acks_late=True, time_limit=600, soft_time_limit=570)
def sync_to_stripe() -> int:
    """Report new usage to Stripe's meters and retry invoices and credit notes not yet there.
    One tenant's failure is logged and does not stop the others."""
    if not stripe_sync.enabled():
        return 0
    reported = 0
    with rls_bypass("Stripe sync: tenants with a subscription"):
        tenants = list(Tenant.objects.filter(pk__in=Subscription.all_tenants.values("tenant")))
    for tenant in tenants:
        try:
            with tenant_context(tenant):
                reported += stripe_sync.sync_tenant(tenant)
        except stripe.StripeError:
            logger.exception("Stripe sync failed", extra={"tenant_id": tenant.public_id})
    return reported


@shared_task(acks_late=True, time_limit=600, soft_time_limit=570)
def reconcile_stripe() -> int:
    """Compare the last two periods of every tenant billed through Stripe with its meters."""
    if not stripe_sync.enabled():
        return 0
    drifted = 0
    with rls_bypass("Stripe reconciliation: tenants billed through Stripe"):
        tenants = [
            subscription.tenant
            for subscription in Subscription.all_tenants.select_related("tenant").exclude(
                stripe_customer=""
            )
        ]
    for tenant in tenants:
        with tenant_context(tenant):
            invoices = list(Invoice.objects.for_tenant(tenant).order_by("-period_start")[:2])
        for invoice in invoices:
            try:
                with tenant_context(tenant):
                    results = stripe_sync.reconcile(
                        tenant, invoice.period_start, invoice.period_end
                    )
            except stripe.StripeError:
                logger.exception("reconciliation failed", extra={"tenant_id": tenant.public_id})
                continue
            drifted += sum(1 for r in results if r.drift)
    return drifted
