"""A state machine over the billing rules: conversations are resolved, re-tagged and reversed,
deliveries are duplicated, workers retry whole batches, periods close in any order, credit notes
are settled and Stripe's events arrive twice and out of order. After every step:

- the ledger nets each conversation to 1 (resolved now) or 0, in the period the call ended;
- for every closed period, the units billed (usage lines + late-usage lines - credit notes) plus
  the ledger's units not settled yet equal the conversations resolved now;
- the money billed for the period (invoice total + late-usage amounts - credits) equals the
  period's price snapshot applied to the units billed.
"""

from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from billing import services, stripe_events
from billing.models import CreditNote, Invoice, InvoiceLine, Meter, StripeEvent, UsageEvent
from billing.pricing import charge
from tests import factories

RESOLVED = Meter.RESOLVED_CONVERSATION
CONVERSATIONS = [f"call_sm{n:02d}" for n in range(12)]


class Billing(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tenant = factories.TenantFactory(created_at=timezone.now() - timedelta(days=100))
        subscription = services.subscription_for(self.tenant)
        current = services.period_at(subscription, timezone.now())
        self.periods = [current]
        while len(self.periods) < 4:
            self.periods.insert(
                0, services.period_at(subscription, self.periods[0].start - timedelta(seconds=1))
            )
        self.resolved: dict[str, bool] = {}  # the conversation's current outcome
        self.period_of: dict[str, int] = {}
        self.events: list[StripeEvent] = []

    def _usage(self, reference: str) -> services.Usage:
        period = self.periods[self.period_of[reference]]
        return services.Usage(
            billable=self.resolved[reference], at=period.start + timedelta(hours=1 + len(reference))
        )

    @rule(
        reference=st.sampled_from(CONVERSATIONS), period=st.integers(0, 3), resolved=st.booleans()
    )
    def tag(self, reference: str, period: int, resolved: bool) -> None:
        """A call is tagged (first time: it ended in `period`), or re-tagged by a person."""
        self.period_of.setdefault(reference, period)
        self.resolved[reference] = resolved
        services.usage_set(
            tenant=self.tenant, meter=RESOLVED, reference=reference, usage=self._usage(reference)
        )

    @rule(references=st.lists(st.sampled_from(CONVERSATIONS), min_size=1, max_size=6, unique=True))
    def retried_batch(self, references: list[str]) -> None:
        """A worker ran a batch, died before acknowledging it, and the batch runs again."""
        known = [r for r in references if r in self.resolved]
        wanted = {r: self._usage(r) for r in known}
        for _ in range(2):
            services.usage_set_many(tenant=self.tenant, meter=RESOLVED, wanted=wanted)

    @rule(period=st.integers(0, 2))
    def close(self, period: int) -> None:
        services.period_close(self.tenant, self.periods[period])

    @rule()
    def settle(self) -> None:
        services.settle(self.tenant)

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            ["invoice.paid", "invoice.payment_failed", "invoice.marked_uncollectible"]
        ),
        created=st.integers(1_700_000_000, 1_700_000_100),
    )
    def stripe_event(self, data: Any, kind: str, created: int) -> None:
        invoices = list(Invoice.objects.for_tenant(self.tenant))
        if not invoices:
            return
        invoice = data.draw(st.sampled_from(invoices))
        event = stripe.Event.construct_from(
            {
                "id": f"evt_{len(self.events)}_{invoice.public_id}",
                "object": "event",
                "type": kind,
                "created": created,
                "data": {
                    "object": {
                        "id": "in_fake",
                        "object": "invoice",
                        "metadata": {"tenant": self.tenant.public_id, "invoice": invoice.public_id},
                    }
                },
            },
            "sk_test",
        )
        self.events.append(stripe_events.store(event))
        stripe_events.process(self.events[-1])

    @rule(data=st.data())
    def stripe_replay(self, data: Any) -> None:
        if self.events:
            stored = data.draw(st.sampled_from(self.events))
            before = stored.result
            assert stripe_events.process(
                stripe_events.store(stripe.Event.construct_from(stored.payload, "sk_test"))
            ) == (StripeEvent.objects.get(pk=stored.pk).result or before)

    @invariant()
    def ledger_nets_to_current_outcomes(self) -> None:
        net = dict(
            UsageEvent.objects.for_tenant(self.tenant)
            .values("reference")
            .annotate(units=Sum("quantity"))
            .values_list("reference", "units")
        )
        for reference, resolved in self.resolved.items():
            assert net.get(reference, 0) == int(resolved), reference

    @invariant()
    def every_closed_period_bills_its_resolved_conversations_once(self) -> None:
        for index, period in enumerate(self.periods):
            invoice = (
                Invoice.objects.for_tenant(self.tenant)
                .filter(period_start=period.start)
                .exclude(status=Invoice.Status.VOID)
                .first()
            )
            if invoice is None:
                continue
            truth = sum(1 for r, ok in self.resolved.items() if ok and self.period_of[r] == index)
            lines = InvoiceLine.objects.for_tenant(self.tenant)
            own = lines.filter(invoice=invoice, kind=InvoiceLine.Kind.USAGE)
            late = lines.filter(adjusts=invoice)
            credits = CreditNote.objects.for_tenant(self.tenant).filter(invoice=invoice)
            billed = (
                sum(line.quantity for line in own)
                + sum(line.quantity for line in late)
                - sum(note.quantity for note in credits)
            )
            unsettled = services.usage_totals(
                self.tenant, period.start, period.end, after=invoice.settled_through
            ).get(RESOLVED, 0)
            assert billed + unsettled == truth
            assert invoice.quantities[RESOLVED] == billed
            carried = lines.filter(invoice=invoice, kind=InvoiceLine.Kind.LATE_USAGE)
            money = (
                invoice.total
                - sum(line.amount for line in carried)  # other periods' late usage
                + sum(line.amount for line in late)
                - sum(note.amount for note in credits)
            )
            assert money == charge(invoice.pricing, {RESOLVED: billed}).total


@pytest.mark.django_db
def test_billing_state_machine() -> None:
    run_state_machine_as_test(
        Billing,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
