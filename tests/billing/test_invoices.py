"""The ledger, period closes, late usage, credit notes and caps, through the services."""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from billing import services, tasks
from billing.models import CreditNote, Invoice, InvoiceLine, Meter, UsageEvent
from billing.selectors import lines_events
from calls.models import Call
from calls.services import call_open, outcome_set
from tenants.access import Actor
from tenants.errors import InvalidInput
from tenants.roles import Role
from tests import factories
from tests.billing.conftest import aged_tenant, last_period, tagged_call

pytestmark = pytest.mark.django_db
RESOLVED = Meter.RESOLVED_CONVERSATION


def record(tenant, reference: str, billable: bool, at=None):
    return services.usage_set(
        tenant=tenant,
        meter=RESOLVED,
        reference=reference,
        usage=services.Usage(billable=billable, at=at or timezone.now()),
    )


def test_recording_the_same_unit_twice_records_it_once() -> None:
    tenant = factories.TenantFactory()
    assert record(tenant, "call_a", True) is not None
    assert record(tenant, "call_a", True) is None
    reversal = record(tenant, "call_a", False)
    assert reversal is not None and reversal.quantity == -1
    assert record(tenant, "call_a", False) is None
    assert list(
        UsageEvent.objects.for_tenant(tenant).order_by("id").values_list("quantity", flat=True)
    ) == [1, -1]


def test_a_reversal_falls_in_the_period_of_the_unit_it_takes_back() -> None:
    tenant = factories.TenantFactory()
    long_ago = timezone.now() - timedelta(days=20)
    record(tenant, "call_a", True, at=long_ago)
    reversal = record(tenant, "call_a", False, at=timezone.now())
    assert reversal is not None and reversal.occurred_at == long_ago


def test_the_database_refuses_to_change_or_delete_a_usage_event() -> None:
    event = factories.UsageEventFactory()
    for statement in (
        "UPDATE billing_usageevent SET quantity = 5 WHERE id = %s",
        "DELETE FROM billing_usageevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    with pytest.raises(TypeError):
        UsageEvent.objects.for_tenant(event.tenant).update(quantity=5)


def test_a_period_close_issues_one_finalized_invoice_whose_lines_lead_to_the_calls() -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    resolved = [tagged_call(tenant, ended_at=period.start + timedelta(days=d)) for d in (1, 2, 3)]
    tagged_call(tenant, ended_at=period.start + timedelta(days=4), resolved=False)
    tagged_call(tenant, ended_at=timezone.now())  # the current period: not on this invoice

    assert services.periods_due(tenant) == [period]
    invoice = services.period_close(tenant, period)

    assert invoice.status == Invoice.Status.FINALIZED
    assert (invoice.number, invoice.currency, invoice.total) == (1, "usd", 3 * 70)
    line = invoice.lines.get()
    assert (line.kind, line.quantity, line.unit_amount, line.amount) == ("usage", 3, 70, 210)
    charged = lines_events([line])
    assert charged is not None
    assert sorted(charged.values_list("reference", flat=True)) == sorted(
        c.public_id for c in resolved
    )
    assert services.period_close(tenant, period) == invoice  # closing again changes nothing
    assert services.periods_due(tenant) == []
    assert Invoice.objects.for_tenant(tenant).count() == 1


def test_prices_are_snapshotted_so_a_catalogue_change_leaves_issued_invoices_alone() -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    tagged_call(tenant, ended_at=period.start + timedelta(days=1))
    invoice = services.period_close(tenant, period)
    services.default_plan().prices.update(unit_amount=99)
    tagged_call(tenant, ended_at=period.start + timedelta(days=2))  # arrives late
    services.settle(tenant)
    invoice.refresh_from_db()
    assert (invoice.pricing["prices"][RESOLVED]["unit_amount"], invoice.total) == (70, 70)


def test_a_reversal_after_finalization_becomes_a_credit_note_once() -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    calls = [tagged_call(tenant, ended_at=period.start + timedelta(days=d)) for d in (1, 2)]
    invoice = services.period_close(tenant, period)
    owner = factories.MembershipFactory(tenant=tenant, role=Role.OWNER)

    outcome_set(call=calls[0], actor=Actor.for_membership(owner), label="escalated")
    notes = services.settle(tenant)
    assert services.settle(tenant) == []

    assert [(n.quantity, n.amount) for n in notes] == [(1, 70)]
    invoice.refresh_from_db()
    assert invoice.total == 140  # an issued invoice's total never changes
    assert invoice.quantities == {RESOLVED: 1}
    assert list(lines_events([invoice.lines.get()]).values_list("reference", flat=True))
    note = CreditNote.objects.for_tenant(tenant).get()
    assert note.invoice == invoice


def test_usage_recorded_after_a_close_is_billed_on_the_next_invoice() -> None:
    tenant = aged_tenant(70)
    subscription = services.subscription_for(tenant)
    now = timezone.now()
    current = services.period_at(subscription, now)
    previous = services.period_at(subscription, current.start - timedelta(seconds=1))
    older = services.period_at(subscription, previous.start - timedelta(seconds=1))
    tagged_call(tenant, ended_at=older.start + timedelta(days=1))
    first = services.period_close(tenant, older)
    late = tagged_call(tenant, ended_at=older.start + timedelta(days=2))  # tagged after the close

    second = services.period_close(tenant, previous)

    line = second.lines.get(kind=InvoiceLine.Kind.LATE_USAGE)
    assert (line.quantity, line.amount, line.adjusts) == (1, 70, first)
    charged = lines_events([line])
    assert charged is not None
    assert list(charged.values_list("reference", flat=True)) == [late.public_id]
    assert second.total == 70
    first.refresh_from_db()
    assert first.quantities == {RESOLVED: 2}


def test_a_plan_change_waits_for_the_next_period() -> None:
    tenant = aged_tenant()
    owner = factories.MembershipFactory(tenant=tenant, role=Role.OWNER)
    growth = factories.PriceFactory(plan__code="growth", unit_amount=50).plan
    subscription = services.plan_change(
        actor=Actor.for_membership(owner), tenant=tenant, plan_code="growth"
    )
    current = services.period_at(subscription, timezone.now())
    assert subscription.next_plan == growth and subscription.next_plan_from == current.end
    assert services.standing(tenant).plan.code == "standard"
    assert services.standing(tenant, current.end + timedelta(hours=1)).plan == growth


def test_a_hard_cap_refuses_new_calls_and_a_soft_cap_alerts_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    tenant = factories.TenantFactory()
    owner = factories.MembershipFactory(tenant=tenant, role=Role.OWNER)
    finance = factories.MembershipFactory(tenant=tenant, role=Role.FINANCE)
    factories.MembershipFactory(tenant=tenant, role=Role.EDITOR)
    services.subscription_update(
        actor=Actor.for_membership(owner),
        tenant=tenant,
        changes={"usage_soft_limit": 2, "usage_hard_limit": 3},
    )
    with pytest.raises(InvalidInput):
        services.subscription_update(
            actor=Actor.for_membership(owner), tenant=tenant, changes={"usage_soft_limit": 9}
        )
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):  # alerts go after the commit
            record(tenant, f"call_{n}", True)
    alerts = [m for m in mail.outbox if "soft limit" in m.subject]
    assert len(alerts) == 1
    assert sorted(alerts[0].to) == sorted([owner.user.email, finance.user.email])
    assert services.standing(tenant).hard_reached

    number = factories.PhoneNumberFactory(
        carrier_account=factories.CarrierAccountFactory(tenant=tenant),
        agent=factories.AgentFactory(tenant=tenant),
    )
    factories.TrafficAllocationFactory(version=factories.published_version(agent=number.agent))
    admission = call_open(
        number=number, carrier="sandbox", carrier_call_id="CA-cap", caller="+15550100", callee=""
    )
    assert admission.version is None
    assert admission.call.end_reason == Call.EndReason.USAGE_CAP


def test_the_beat_task_closes_every_due_period_then_settles() -> None:
    tenant = aged_tenant()
    tagged_call(tenant, ended_at=last_period(tenant).start + timedelta(days=1))
    assert tasks.close_due_periods.apply().get() >= 1
    assert tasks.close_due_periods.apply().get() == 0
    assert Invoice.objects.for_tenant(tenant).get().total == 70


def test_the_management_command_closes_a_given_period() -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    tenant = aged_tenant()
    period = last_period(tenant)
    tagged_call(tenant, ended_at=period.start + timedelta(days=1))
    out = StringIO()
    day = (period.start + timedelta(days=2)).date().isoformat()
    call_command("close_billing_period", tenant=tenant.public_id, date=day, stdout=out)
    assert "70 usd minor units, finalized" in out.getvalue()
    with pytest.raises(CommandError, match="has not ended"):
        call_command("close_billing_period", date=timezone.now().date().isoformat())
