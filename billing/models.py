"""Billing: the usage ledger, the plan catalogue, each tenant's subscription, invoices and credit
notes, and what Stripe told us. Money is an integer count of the currency's minor unit."""

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from tenants.ids import PublicIdField
from tenants.models import AppendOnlyQuerySet, TenantManager, TenantOwnedModel


class Meter(models.TextChoices):
    """What a tenant can be billed for. Each is counted in the ledger and priced by a plan."""

    RESOLVED_CONVERSATION = "resolved_conversation", "Resolved conversation"


class UsageEvent(TenantOwnedModel):
    """One line of the usage ledger: +1 for a billable unit, -1 for its reversal.

    Rows are never changed or deleted (the database refuses too); a correction is a new row.
    `idempotency_key` is unique per tenant and meter, so recording the same unit twice (a retried
    task) adds nothing. A reversal carries the `occurred_at` of the event it reverses, so both
    fall in the same billing period.
    """

    public_id = PublicIdField("use")
    meter = models.CharField(max_length=32, choices=Meter.choices)
    quantity = models.SmallIntegerField()
    # What was billed, by public id (a call's `call_…`): billing imports nothing of calls.
    reference = models.CharField(max_length=64)
    # The agent and version that handled it, by public id, for usage by agent and version.
    agent = models.CharField(max_length=64, blank=True)
    version = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=128)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField()
    reason = models.CharField(max_length=255, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    all_tenants: ClassVar[models.Manager[Any]] = AppendOnlyQuerySet.as_manager()
    objects: ClassVar[TenantManager[Any]] = TenantManager.from_queryset(AppendOnlyQuerySet)()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="usageevent_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "meter", "idempotency_key"], name="usageevent_once"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "meter", "reference"], name="usage_by_reference"),
            # Period totals are one range scan of this index that never visits the table (it
            # covers meter and quantity); read backwards it lists the newest events first.
            models.Index(
                fields=["tenant", "occurred_at", "id"],
                include=["meter", "quantity"],
                name="usage_by_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.quantity:+d} {self.reference}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("UsageEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("UsageEvent rows are append-only")


class MeterReport(TenantOwnedModel):
    """A usage event as reported to a Stripe billing meter (the event itself never changes)."""

    event = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, related_name="stripe_reports")
    customer = models.CharField(max_length=64)
    reported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event"], name="meterreport_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.customer}"


class Plan(models.Model):
    """A priced offer from the operator's catalogue; tenants subscribe to one."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, lower case (usd, jpy).")
    monthly_minimum = models.PositiveBigIntegerField(
        default=0, help_text="In minor units: the least a billed period costs."
    )
    trial_days = models.PositiveSmallIntegerField(default=0)
    is_default = models.BooleanField(
        default=False, help_text="New tenants are subscribed to the default plan."
    )
    is_public = models.BooleanField(default=True, help_text="Owners may choose it themselves.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_plan"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    """How a plan prices one meter: a flat unit amount, or graduated or volume tiers, after an
    included quantity per period."""

    class Mode(models.TextChoices):
        FLAT = "flat"
        GRADUATED = "graduated"
        VOLUME = "volume"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    meter = models.CharField(max_length=32, choices=Meter.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FLAT)
    unit_amount = models.PositiveBigIntegerField(default=0, help_text="Minor units per unit.")
    included_quantity = models.PositiveIntegerField(default=0)
    # [{"up_to": 1000 | null, "unit_amount": 70, "flat_amount": 0}, …], ascending, last up_to null.
    tiers = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "meter"], name="one_price_per_meter"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}: {self.meter}"


class Subscription(TenantOwnedModel):
    """A tenant's billing relationship: its plan, its periods, its caps and its Stripe customer.

    Periods are calendar months starting at `anchor` (a day after the 28th falls back to the
    month's last day). A plan change waits in `next_plan` until the next period begins.
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    next_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    next_plan_from = models.DateTimeField(null=True, blank=True)
    anchor = models.DateTimeField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    discount_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Taken off every invoice's total, rounded half up to a minor unit."
    )
    usage_soft_limit = models.PositiveIntegerField(null=True, blank=True)
    usage_hard_limit = models.PositiveIntegerField(null=True, blank=True)
    spend_soft_limit = models.PositiveBigIntegerField(null=True, blank=True)
    spend_hard_limit = models.PositiveBigIntegerField(null=True, blank=True)
    soft_alerted_for = models.DateTimeField(
        null=True, blank=True, help_text="Start of the period whose soft-limit alert was sent."
    )
    billing_email = models.EmailField(blank=True)
    stripe_customer = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_subscription_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.plan_id}"


class Invoice(TenantOwnedModel):
    """What a tenant owes for one period, with the plan's prices as they were at the close."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        FINALIZED = "finalized"
        PAID = "paid"
        VOID = "void"
        UNCOLLECTIBLE = "uncollectible"

    public_id = PublicIdField("inv")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    # The plan's prices, minimum, discount and trial as applied: later catalogue edits never
    # change what an issued invoice, or its credit notes, charge.
    pricing = models.JSONField()
    quantities = models.JSONField(default=dict, help_text="Units billed per meter, after credits.")
    subtotal = models.BigIntegerField(default=0)
    discount = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    # Usage events with ids up to this one were counted (the ledger's high-water mark at close);
    # later events for the period are settled by late-usage lines or credit notes.
    usage_through = models.BigIntegerField(default=0)
    settled_through = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Voided or uncollectible.")
    # Stripe's `created` of the last event that changed the status, so an older one cannot undo it.
    status_event_created = models.BigIntegerField(default=0)
    stripe_invoice = models.CharField(max_length=64, blank=True)
    stripe_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="invoice_public_id"),
            models.UniqueConstraint(fields=["tenant", "number"], name="invoice_number"),
            models.UniqueConstraint(
                fields=["tenant", "period_start"],
                condition=~models.Q(status="void"),
                name="one_invoice_per_period",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-period_start"], name="invoice_recent")]

    def __str__(self) -> str:
        return f"Invoice {self.number} ({self.period_start:%Y-%m-%d})"

    @property
    def audit_label(self) -> str:
        return f"invoice {self.number}"


class InvoiceLine(TenantOwnedModel):
    """One line of an invoice. Usage lines name the ledger slice they charge: the meter's events
    with `occurred_at` in [period_start, period_end) and id in (events_after, events_through]."""

    class Kind(models.TextChoices):
        USAGE = "usage"
        LATE_USAGE = "late_usage"
        MINIMUM = "minimum"
        DISCOUNT = "discount"
        TRIAL = "trial"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    meter = models.CharField(max_length=32, choices=Meter.choices, blank=True)
    description = models.CharField(max_length=255)
    quantity = models.BigIntegerField(default=0)
    unit_amount = models.BigIntegerField(null=True, blank=True)
    amount = models.BigIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    events_after = models.BigIntegerField(default=0)
    events_through = models.BigIntegerField(default=0)
    # A late-usage line charges units of an earlier invoice's period.
    adjusts = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="late_lines"
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "invoice", "position"], name="line_position"),
        ]

    def __str__(self) -> str:
        return self.description


class CreditNote(TenantOwnedModel):
    """Money given back on a finalized invoice for units reversed after it was issued."""

    public_id = PublicIdField("cn")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    meter = models.CharField(max_length=32, choices=Meter.choices)
    quantity = models.BigIntegerField()
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=255)
    events_after = models.BigIntegerField()
    events_through = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    stripe_credit_note = models.CharField(max_length=64, blank=True)
    stripe_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="creditnote_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "invoice", "events_through"], name="creditnote_once"
            ),
        ]

    def __str__(self) -> str:
        return f"Credit {self.amount} on {self.invoice_id}"


class Reconciliation(TenantOwnedModel):
    """The ledger's count for a period next to the Stripe meter's, as last compared."""

    meter = models.CharField(max_length=32, choices=Meter.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    ledger_quantity = models.BigIntegerField()
    stripe_quantity = models.BigIntegerField()
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "meter", "period_start"], name="reconciliation_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.period_start:%Y-%m-%d}: drift {self.drift}"

    @property
    def drift(self) -> int:
        return self.stripe_quantity - self.ledger_quantity


class StripeEvent(models.Model):
    """An event Stripe sent us, stored raw before anything is done with it, once per id."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=255)
    created = models.BigIntegerField(help_text="Stripe's unix time for the event.")
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
