"""Billing's rules: the usage ledger, subscriptions and caps, period closes, credit notes.

Other apps tell billing what happened through `usage_set` / `usage_set_many` only, and ask it
whether a tenant may take new calls with `calls_allowed`.

Closing a period and recording usage agree through one lock: recording holds a share lock on
the tenant's subscription row, a close takes it exclusively just long enough to read the ledger's
high-water mark (its largest event id). Every event of the tenant at or below the mark has been
committed, and every later event gets a larger id, so each event is counted by exactly one
invoice, late-usage line or credit note.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    Meter,
    Plan,
    Price,
    Subscription,
    UsageEvent,
)
from billing.money import period_containing
from billing.pricing import Bill, Pricing, charge
from tenants.access import Actor
from tenants.errors import InvalidInput
from tenants.models import Membership, Tenant
from tenants.rls import tenant_context
from tenants.roles import Role
from tenants.services import audit_event_record

logger = logging.getLogger(__name__)


# --- The ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What the ledger should say about one reference: billable or not, and its context."""

    billable: bool
    at: datetime
    reason: str = ""
    agent: str = ""
    version: str = ""


def usage_set(*, tenant: Tenant, meter: str, reference: str, usage: Usage) -> UsageEvent | None:
    """Make `reference` count once (billable) or not at all, by appending a usage event or its
    reversal. Nothing is appended when the ledger already agrees, so running this twice, or
    twice at once, changes the ledger once. Returns the event appended, if any."""
    appended = usage_set_many(tenant=tenant, meter=meter, wanted={reference: usage})
    return appended[0] if appended else None


def usage_set_many(*, tenant: Tenant, meter: str, wanted: dict[str, Usage]) -> list[UsageEvent]:
    """`usage_set` for many references at once: a handful of queries whatever their number."""
    subscription = subscription_for(tenant)
    with transaction.atomic():
        _hold_ledger(subscription)
        appended = _append(tenant, meter, wanted)
    if appended:
        transaction.on_commit(partial(_check_soft_limits, subscription))
    return appended


def _hold_ledger(subscription: Subscription) -> None:
    """Share-lock the subscription row until the transaction ends: a period close waits for us,
    and we wait for its high-water mark (see the module's docstring)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM billing_subscription WHERE id = %s FOR KEY SHARE", [subscription.pk]
            )


def _append(tenant: Tenant, meter: str, wanted: dict[str, Usage]) -> list[UsageEvent]:
    history: dict[str, list[UsageEvent]] = {reference: [] for reference in wanted}
    for event in (
        UsageEvent.objects.for_tenant(tenant)
        .filter(meter=meter, reference__in=list(wanted))
        .order_by("id")
    ):
        history[event.reference].append(event)
    rows = []
    for reference, usage in wanted.items():
        events = history[reference]
        if usage.billable == (sum(e.quantity for e in events) > 0):
            continue
        # The key numbers each change of this reference, so a concurrent duplicate collides.
        fields = {
            "tenant": tenant,
            "meter": meter,
            "reference": reference,
            "agent": usage.agent,
            "version": usage.version,
            "idempotency_key": f"{reference}#{len(events) + 1}",
            "reason": usage.reason[:255],
        }
        if usage.billable:
            rows.append(UsageEvent(quantity=1, occurred_at=usage.at, **fields))
        else:
            last = next(e for e in reversed(events) if e.quantity > 0)
            # Same period as the unit it takes back, so the two always net out together.
            rows.append(
                UsageEvent(quantity=-1, reverses=last, occurred_at=last.occurred_at, **fields)
            )
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


def high_water_mark(subscription: Subscription) -> int:
    """The largest usage event id such that all of this tenant's events up to it are committed
    and none will be added below it."""
    with transaction.atomic():
        Subscription.objects.for_tenant(subscription.tenant).select_for_update().get(
            pk=subscription.pk
        )
        return UsageEvent.all_tenants.aggregate(mark=Max("id"))["mark"] or 0


def usage_totals(
    tenant: Tenant,
    start: datetime,
    end: datetime,
    *,
    after: int = 0,
    through: int | None = None,
) -> dict[str, int]:
    """Net units per meter of events that occurred in [start, end), by id in (after, through]:
    one aggregate in the database, whatever the number of events."""
    events = UsageEvent.objects.for_tenant(tenant).filter(
        occurred_at__gte=start, occurred_at__lt=end, id__gt=after
    )
    if through is not None:
        events = events.filter(id__lte=through)
    rows = events.values("meter").annotate(units=Sum("quantity")).order_by()
    return {row["meter"]: row["units"] for row in rows}


# --- Subscriptions, periods and caps ---------------------------------------------------------


def default_plan() -> Plan:
    """The plan new tenants start on. Until an operator marks one, it is `standard`: 0.70 USD
    per resolved conversation, no minimum, no trial (editable in the admin)."""
    plan = Plan.objects.filter(is_default=True).first()
    if plan is not None:
        return plan
    with transaction.atomic():
        plan, created = Plan.objects.get_or_create(
            code="standard", defaults={"name": "Standard", "currency": "usd", "is_default": True}
        )
        if created:
            Price.objects.create(plan=plan, meter=Meter.RESOLVED_CONVERSATION, unit_amount=70)
    return plan


def subscription_for(tenant: Tenant) -> Subscription:
    """The tenant's subscription, started on the default plan the first time it is needed. Its
    periods count from the tenant's creation (after the plan's free trial, if any)."""
    found = Subscription.objects.for_tenant(tenant).select_related("plan", "next_plan").first()
    if found is not None:
        return found
    plan = default_plan()
    trial_ends_at = tenant.created_at + timedelta(days=plan.trial_days) if plan.trial_days else None
    try:
        with transaction.atomic():
            return Subscription.objects.create(
                tenant=tenant,
                plan=plan,
                anchor=trial_ends_at or tenant.created_at,
                trial_ends_at=trial_ends_at,
            )
    except IntegrityError:
        return Subscription.objects.for_tenant(tenant).select_related("plan", "next_plan").get()


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    trial: bool


def period_at(subscription: Subscription, at: datetime) -> Period:
    """The billing period containing `at`. A free trial is one period of its own, from the
    tenant's creation to the trial's end; monthly periods follow from there."""
    trial_end = subscription.trial_ends_at
    if trial_end is not None and at < trial_end:
        start = min(subscription.tenant.created_at, at)
        return Period(start, trial_end, trial=True)
    start, end = period_containing(subscription.anchor, at)
    return Period(start, end, trial=False)


def plan_for(subscription: Subscription, period: Period) -> Plan:
    starts = subscription.next_plan_from
    if subscription.next_plan is not None and starts is not None and period.start >= starts:
        return subscription.next_plan
    return subscription.plan


def pricing_of(plan: Plan, subscription: Subscription, period: Period) -> Pricing:
    """The snapshot an invoice keeps of how its period is priced."""
    return {
        "plan": plan.code,
        "plan_name": plan.name,
        "currency": plan.currency,
        "monthly_minimum": plan.monthly_minimum,
        "discount_percent": subscription.discount_percent,
        "trial": period.trial,
        "prices": {
            price.meter: {
                "mode": price.mode,
                "unit_amount": price.unit_amount,
                "included_quantity": price.included_quantity,
                "tiers": price.tiers,
            }
            for price in plan.prices.order_by("meter")
        },
    }


@dataclass(frozen=True)
class Standing:
    """Where a tenant stands in its current period, against its caps."""

    period: Period
    plan: Plan
    quantities: dict[str, int]
    bill: Bill
    soft_reached: bool
    hard_reached: bool


def standing(tenant: Tenant, at: datetime | None = None) -> Standing:
    subscription = subscription_for(tenant)
    period = period_at(subscription, at or timezone.now())
    plan = plan_for(subscription, period)
    quantities = usage_totals(tenant, period.start, period.end)
    bill = charge(pricing_of(plan, subscription, period), quantities)
    units = sum(quantities.values())

    def over(units_cap: int | None, spend_cap: int | None) -> bool:
        return (units_cap is not None and units >= units_cap) or (
            spend_cap is not None and bill.total >= spend_cap
        )

    return Standing(
        period=period,
        plan=plan,
        quantities=quantities,
        bill=bill,
        soft_reached=over(subscription.usage_soft_limit, subscription.spend_soft_limit),
        hard_reached=over(subscription.usage_hard_limit, subscription.spend_hard_limit),
    )


def calls_allowed(tenant: Tenant) -> bool:
    """False once the tenant reached a hard cap for the current period: new calls are refused
    (the caller hears the agent is not in service, or is sent to its fallback number)."""
    subscription = subscription_for(tenant)
    if subscription.usage_hard_limit is None and subscription.spend_hard_limit is None:
        return True
    return not standing(tenant).hard_reached


def _check_soft_limits(subscription: Subscription) -> None:
    """Tell the tenant's owners and finance people, once a period, that a soft cap is reached.
    Runs after the usage commits, in a transaction of its own."""
    if subscription.usage_soft_limit is None and subscription.spend_soft_limit is None:
        return
    with tenant_context(subscription.tenant_id):
        _notify_soft_limits(subscription)


def _notify_soft_limits(subscription: Subscription) -> None:
    now = standing(subscription.tenant)
    if not now.soft_reached:
        return
    updated = (
        Subscription.objects.for_tenant(subscription.tenant)
        .filter(pk=subscription.pk)
        .filter(Q(soft_alerted_for__isnull=True) | Q(soft_alerted_for__lt=now.period.start))
        .update(soft_alerted_for=now.period.start)
    )
    if not updated:
        return
    audit_event_record(
        actor=Actor.system("billing"),
        action="billing.soft_limit_reached",
        target=subscription.tenant,
        changes={"period_start": [None, now.period.start.isoformat()]},
    )
    recipients = billing_recipients(subscription)
    if recipients:
        send_mail(
            subject="Usage alert: your soft limit is reached",
            message=(
                f"{subscription.tenant.name} has used {sum(now.quantities.values())} units "
                f"this period ({now.bill.total} minor units of {now.plan.currency.upper()}), "
                "reaching its soft limit. Calls go on until a hard limit is reached."
            ),
            from_email=None,
            recipient_list=recipients,
        )


def billing_recipients(subscription: Subscription) -> list[str]:
    people = set(
        Membership.objects.for_tenant(subscription.tenant)
        .filter(role__in=[Role.OWNER, Role.FINANCE])
        .values_list("user__email", flat=True)
    )
    if subscription.billing_email:
        people.add(subscription.billing_email)
    return sorted(people)


LIMIT_FIELDS = ("usage_soft_limit", "usage_hard_limit", "spend_soft_limit", "spend_hard_limit")


def subscription_update(*, actor: Actor, tenant: Tenant, changes: dict[str, Any]) -> Subscription:
    """Change the caps or the billing email. Only owners (`billing:write`)."""
    actor.require("billing:write")
    subscription = subscription_for(tenant)
    errors: dict[str, list[str]] = {}
    for soft, hard in (LIMIT_FIELDS[:2], LIMIT_FIELDS[2:]):
        low = changes.get(soft, getattr(subscription, soft))
        high = changes.get(hard, getattr(subscription, hard))
        if low is not None and high is not None and low > high:
            errors[soft] = ["A soft limit cannot be above the hard limit."]
    if errors:
        raise InvalidInput("The limits do not fit together.", errors=errors)
    before = {name: getattr(subscription, name) for name in changes}
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=list(changes))
    audit_event_record(
        actor=actor,
        action="billing.subscription_changed",
        target=tenant,
        changes={k: [before[k], v] for k, v in changes.items() if before[k] != v},
    )
    return subscription


def plan_change(*, actor: Actor, tenant: Tenant, plan_code: str) -> Subscription:
    """Move the tenant to another public plan from its next period on. Only owners."""
    actor.require("billing:write")
    plan = Plan.objects.filter(code=plan_code, is_public=True).first()
    if plan is None:
        raise InvalidInput.field("plan", f"No plan {plan_code!r} is on offer.")
    subscription = subscription_for(tenant)
    now = period_at(subscription, timezone.now())
    before = subscription.next_plan.code if subscription.next_plan else subscription.plan.code
    if plan == subscription.plan:
        subscription.next_plan, subscription.next_plan_from = None, None
    else:
        subscription.next_plan, subscription.next_plan_from = plan, now.end
    subscription.save(update_fields=["next_plan", "next_plan_from"])
    audit_event_record(
        actor=actor,
        action="billing.plan_changed",
        target=tenant,
        changes={"plan": [before, plan.code], "from": [None, now.end.isoformat()]},
    )
    return subscription


# --- Closing periods -------------------------------------------------------------------------


def preview(tenant: Tenant, at: datetime | None = None) -> tuple[Period, Pricing, Bill]:
    """The invoice the current period would get if it closed now (nothing is stored)."""
    subscription = subscription_for(tenant)
    period = period_at(subscription, at or timezone.now())
    pricing = pricing_of(plan_for(subscription, period), subscription, period)
    return period, pricing, charge(pricing, usage_totals(tenant, period.start, period.end))


def periods_due(tenant: Tenant, now: datetime | None = None) -> list[Period]:
    """Ended periods without an invoice, oldest first; a period is due once it has been over for
    BILLING_CLOSE_DELAY_SECONDS, which leaves the after-call work time to tag its last calls."""
    subscription = subscription_for(tenant)
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.BILLING_CLOSE_DELAY_SECONDS)
    last = (
        Invoice.objects.for_tenant(tenant)
        .exclude(status=Invoice.Status.VOID)
        .aggregate(end=Max("period_end"))["end"]
    )
    period = period_at(subscription, last or min(subscription.tenant.created_at, _first(tenant)))
    due = []
    while period.end <= cutoff:
        due.append(period)
        period = period_at(subscription, period.end)
    return due


def _first(tenant: Tenant) -> datetime:
    first = UsageEvent.objects.for_tenant(tenant).order_by("occurred_at").first()
    return first.occurred_at if first else tenant.created_at


def period_close(tenant: Tenant, period: Period) -> Invoice:
    """Issue the period's invoice: usage up to the ledger's high-water mark priced with the
    plan as it is now (and snapshotted), late usage of earlier periods, then finalize it.
    Closing a period twice returns the invoice of the first close."""
    subscription = subscription_for(tenant)
    existing = _invoice_for(tenant, period)
    if existing is not None:
        return existing
    mark = high_water_mark(subscription)
    plan = plan_for(subscription, period)
    pricing = pricing_of(plan, subscription, period)
    quantities = usage_totals(tenant, period.start, period.end, through=mark)
    bill = charge(pricing, quantities)
    with transaction.atomic():
        locked = Subscription.objects.for_tenant(tenant).select_for_update().get(pk=subscription.pk)
        existing = _invoice_for(tenant, period)
        if existing is not None:
            return existing
        number = (Invoice.objects.for_tenant(tenant).aggregate(n=Max("number"))["n"] or 0) + 1
        invoice = Invoice.objects.create(
            tenant=tenant,
            number=number,
            period_start=period.start,
            period_end=period.end,
            plan=plan,
            currency=plan.currency,
            pricing=pricing,
            quantities={meter: max(quantities.get(meter, 0), 0) for meter in pricing["prices"]},
            subtotal=bill.subtotal,
            discount=bill.discount,
            total=bill.total,
            usage_through=mark,
            settled_through=mark,
        )
        lines = [
            InvoiceLine(
                tenant=tenant,
                invoice=invoice,
                position=position,
                kind=draft.kind,
                meter=draft.meter,
                description=draft.description,
                quantity=draft.quantity,
                unit_amount=draft.unit_amount,
                amount=draft.amount,
                period_start=period.start,
                period_end=period.end,
                events_through=mark if draft.meter else 0,
            )
            for position, draft in enumerate(bill.lines, 1)
        ]
        InvoiceLine.all_tenants.bulk_create(lines)
        _settle(tenant, mark, into=invoice)
        invoice.status = Invoice.Status.FINALIZED
        invoice.finalized_at = timezone.now()
        invoice.save(update_fields=["status", "finalized_at", "subtotal", "total"])
        if locked.next_plan_id and plan == locked.next_plan:
            locked.plan, locked.next_plan, locked.next_plan_from = plan, None, None
            locked.save(update_fields=["plan", "next_plan", "next_plan_from"])
        audit_event_record(
            actor=Actor.system("billing"),
            action="invoice.finalized",
            target=invoice,
            changes={"total": [None, invoice.total], "currency": [None, invoice.currency]},
        )
    return invoice


def _invoice_for(tenant: Tenant, period: Period) -> Invoice | None:
    return (
        Invoice.objects.for_tenant(tenant)
        .filter(period_start=period.start)
        .exclude(status=Invoice.Status.VOID)
        .first()
    )


def invoiced_at(tenant: Tenant, at: datetime) -> datetime | None:
    """When the invoice covering usage that occurred `at` was finalized (None: not invoiced)."""
    return (
        Invoice.objects.for_tenant(tenant)
        .filter(period_start__lte=at, period_end__gt=at, finalized_at__isnull=False)
        .exclude(status=Invoice.Status.VOID)
        .values_list("finalized_at", flat=True)
        .first()
    )


def settle(tenant: Tenant) -> list[CreditNote]:
    """Issue credit notes for units reversed since their invoice was finalized. (Units added late
    wait for the next close, which bills them as late usage.)"""
    subscription = subscription_for(tenant)
    mark = high_water_mark(subscription)
    with transaction.atomic():
        Subscription.objects.for_tenant(tenant).select_for_update().get(pk=subscription.pk)
        return _settle(tenant, mark, into=None)


def _settle(tenant: Tenant, mark: int, *, into: Invoice | None) -> list[CreditNote]:
    """Bring every open period's invoice in line with the ledger up to `mark`. A net reversal
    becomes a credit note on that invoice; net late usage becomes a line on `into` (the invoice
    being closed), priced with the earlier invoice's snapshot at its marginal cost."""
    horizon = timezone.now() - timedelta(days=tenant.dispute_window_days + 62)
    notes = []
    invoices = (
        Invoice.objects.for_tenant(tenant)
        .filter(
            status__in=[
                Invoice.Status.FINALIZED,
                Invoice.Status.PAID,
                Invoice.Status.UNCOLLECTIBLE,
            ],
            settled_through__lt=mark,
            period_end__gte=horizon,
        )
        .order_by("period_start")
    )
    if into is not None:
        invoices = invoices.exclude(pk=into.pk)
    for invoice in invoices:
        late = usage_totals(
            tenant,
            invoice.period_start,
            invoice.period_end,
            after=invoice.settled_through,
            through=mark,
        )
        late = {meter: units for meter, units in late.items() if units}
        if any(units > 0 for units in late.values()) and into is None:
            continue  # the next close bills it; settling part of it now would split the window
        before = charge(invoice.pricing, invoice.quantities)
        quantities = {
            m: invoice.quantities.get(m, 0) + late.get(m, 0) for m in invoice.pricing["prices"]
        }
        for meter, units in late.items():
            if meter not in invoice.pricing["prices"]:
                continue
            single = dict(invoice.quantities, **{meter: quantities[meter]})
            amount = charge(invoice.pricing, single).total - before.total
            if units < 0:
                notes.append(
                    CreditNote.objects.create(
                        tenant=tenant,
                        invoice=invoice,
                        meter=meter,
                        quantity=-units,
                        amount=-amount,
                        reason=f"{-units} {Meter(meter).label.lower()}(s) reversed after invoicing",
                        events_after=invoice.settled_through,
                        events_through=mark,
                    )
                )
            elif into is not None:
                position = into.lines.count() + 1
                InvoiceLine.objects.create(
                    tenant=tenant,
                    invoice=into,
                    position=position,
                    kind=InvoiceLine.Kind.LATE_USAGE,
                    meter=meter,
                    description=(
                        f"{Meter(meter).label}s of {invoice.period_start:%Y-%m-%d} - "
                        f"{invoice.period_end:%Y-%m-%d} recorded after invoice {invoice.number}"
                    ),
                    quantity=units,
                    amount=amount,
                    period_start=invoice.period_start,
                    period_end=invoice.period_end,
                    events_after=invoice.settled_through,
                    events_through=mark,
                    adjusts=invoice,
                )
                into.subtotal += amount
                into.total += amount
        invoice.quantities = quantities
        invoice.settled_through = mark
        invoice.save(update_fields=["quantities", "settled_through"])
    for note in notes:
        audit_event_record(
            actor=Actor.system("billing"),
            action="credit_note.issued",
            target=note.invoice,
            changes={"credit": [None, note.amount], "units": [None, note.quantity]},
        )
    return notes


def invoice_status_set(
    invoice: Invoice, status: str, *, event_created: int = 0, actor: Actor | None = None
) -> bool:
    """Move a finalized invoice to paid, void or uncollectible (paid also from uncollectible).
    An event older than the one behind the current status changes nothing. True if changed."""
    allowed = {
        Invoice.Status.PAID: {Invoice.Status.FINALIZED, Invoice.Status.UNCOLLECTIBLE},
        Invoice.Status.VOID: {Invoice.Status.FINALIZED, Invoice.Status.UNCOLLECTIBLE},
        Invoice.Status.UNCOLLECTIBLE: {Invoice.Status.FINALIZED},
    }
    with transaction.atomic():
        locked = Invoice.objects.for_tenant(invoice.tenant).select_for_update().get(pk=invoice.pk)
        if locked.status not in allowed[Invoice.Status(status)]:
            return False
        if event_created and event_created < locked.status_event_created:
            return False
        before = locked.status
        now = timezone.now()
        locked.status = status
        locked.status_event_created = max(event_created, locked.status_event_created)
        if status == Invoice.Status.PAID:
            locked.paid_at = now
        else:
            locked.closed_at = now
        locked.save(update_fields=["status", "status_event_created", "paid_at", "closed_at"])
        audit_event_record(
            actor=actor or Actor.system("stripe"),
            action=f"invoice.{status}",
            target=locked,
            changes={"status": [before, status]},
        )
    invoice.refresh_from_db()
    return True
