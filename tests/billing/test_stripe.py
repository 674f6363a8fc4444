"""The Stripe mirror and Stripe's events, against the fake Stripe REST server, and the
finance journey through the API: usage, preview, close, mirror, payment, replay."""

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.test import Client
from django.utils import timezone

from billing import services, stripe_sync, tasks
from billing.models import Invoice, MeterReport, Reconciliation, StripeEvent
from tenants.roles import Role
from tests import factories
from tests.billing.conftest import WEBHOOK_SECRET, aged_tenant, last_period, tagged_call
from tests.conftest import key_client, verified_login
from tests.fakes.stripe import FakeStripe

pytestmark = pytest.mark.django_db


def deliver(body: bytes, signature: str) -> Any:
    return Client().post(
        "/webhooks/stripe", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def test_the_finance_journey_from_tagged_calls_to_a_paid_invoice(fake_stripe: FakeStripe) -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    calls = [tagged_call(tenant, ended_at=period.start + timedelta(days=d)) for d in (1, 2)]
    current = tagged_call(tenant, ended_at=timezone.now())
    finance = factories.MembershipFactory(tenant=tenant, role=Role.FINANCE)
    client = verified_login(Client(), finance.user)

    usage = client.get("/v1/billing/usage").json()["results"]
    assert sorted(e["call"] for e in usage) == sorted(c.public_id for c in [*calls, current])
    call_page = client.get(usage[0]["call_url"]).json()
    assert call_page["outcome"]["resolved"] is True  # the evidence behind the charge
    account = client.get("/v1/billing").json()
    assert (account["mode"], account["usage"]) == ("stripe", {"resolved_conversation": 1})
    preview = client.get("/v1/billing/preview").json()
    assert (preview["total"], preview["cost_per_resolution"]) == (70, 70)
    events = client.get(preview["lines"][0]["usage_url"]).json()["results"]
    assert [e["call"] for e in events] == [current.public_id]

    assert tasks.close_due_periods.apply().get() == 1
    invoice = Invoice.objects.for_tenant(tenant).get()
    tasks.sync_invoice.apply(args=[invoice.pk]).get()
    invoice.refresh_from_db()

    remote = fake_stripe.invoices[invoice.stripe_invoice]
    assert (remote["status"], remote["total"], remote["currency"]) == ("open", 140, "usd")
    assert remote["metadata"] == {"tenant": tenant.public_id, "invoice": invoice.public_id}
    keys = [k for k in fake_stripe.keys if k.startswith("invoice-")]
    assert keys == [
        f"invoice-{invoice.public_id}",
        f"invoice-{invoice.public_id}-line-1",
        f"invoice-{invoice.public_id}-finalize",
    ]
    body = client.get(f"/v1/billing/invoices/{invoice.public_id}").json()
    assert (body["status"], body["total"], body["lines"][0]["quantity"]) == ("finalized", 140, 2)
    charged = client.get(body["lines"][0]["usage_url"]).json()["results"]
    assert sorted(e["call"] for e in charged) == sorted(c.public_id for c in calls)

    fake_stripe.pay(invoice.stripe_invoice)
    paid = fake_stripe.signed_event(
        "invoice.paid", fake_stripe.invoice_object(invoice.stripe_invoice), WEBHOOK_SECRET
    )
    assert deliver(*paid).status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    before = (invoice.paid_at, StripeEvent.objects.count())
    assert deliver(*paid).status_code == 200  # a replay changes nothing
    invoice.refresh_from_db()
    assert (invoice.paid_at, StripeEvent.objects.count()) == before


def test_a_retried_sync_after_a_stripe_failure_creates_nothing_twice(
    fake_stripe: FakeStripe,
) -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    tagged_call(tenant, ended_at=period.start + timedelta(days=1))
    invoice = services.period_close(tenant, period)
    fake_stripe.fail_next("POST", r"/v1/invoices/[^/]+/finalize")
    with pytest.raises(stripe.APIError):
        stripe_sync.sync_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.stripe_invoice == "" and "HTTP 500" in invoice.stripe_error

    stripe_sync.sync_invoice(invoice)

    assert len(fake_stripe.invoices) == 1 and len(fake_stripe.invoice_items) == 1
    assert len(fake_stripe.customers) == 1
    assert fake_stripe.replays >= 2  # the invoice and its item came back from the key store
    assert next(iter(fake_stripe.invoices.values()))["status"] == "open"


def test_usage_is_reported_to_the_meter_once_and_reconciled(fake_stripe: FakeStripe) -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    for day in (1, 2, 3):
        tagged_call(tenant, ended_at=period.start + timedelta(days=day))

    assert stripe_sync.report_usage(tenant) == 3
    assert stripe_sync.report_usage(tenant) == 0
    assert MeterReport.objects.for_tenant(tenant).count() == 3
    assert [e["payload"]["value"] for e in fake_stripe.meter_events] == ["1", "1", "1"]
    results = stripe_sync.reconcile(tenant, period.start, period.end)
    assert [(r.ledger_quantity, r.stripe_quantity, r.drift) for r in results] == [(3, 3, 0)]

    customer = services.subscription_for(tenant).stripe_customer
    stripe.StripeClient(
        fake_stripe.api_key, base_addresses={"api": fake_stripe.url}
    ).v1.billing.meter_events.create(
        {
            "event_name": "resolved_conversation",
            "payload": {"stripe_customer_id": customer, "value": "1"},
            "identifier": "someone-else",
            "timestamp": int((period.start + timedelta(days=4)).timestamp()),
        }
    )
    stripe_sync.reconcile(tenant, period.start, period.end)
    assert Reconciliation.objects.for_tenant(tenant).get().drift == 1


def test_stripe_events_are_verified_and_an_older_one_cannot_undo_a_newer_one(
    fake_stripe: FakeStripe, settings: Any
) -> None:
    tenant = aged_tenant()
    period = last_period(tenant)
    tagged_call(tenant, ended_at=period.start + timedelta(days=1))
    invoice = services.period_close(tenant, period)
    stripe_sync.sync_invoice(invoice)
    invoice.refresh_from_db()
    obj = fake_stripe.invoice_object(invoice.stripe_invoice)
    now = int(time.time())

    failed = fake_stripe.signed_event(
        "invoice.payment_failed", obj, WEBHOOK_SECRET, created=now - 60
    )
    paid = fake_stripe.signed_event("invoice.paid", obj, WEBHOOK_SECRET, created=now)
    assert deliver(*paid).status_code == 200
    assert deliver(*failed).status_code == 200  # arrived late, and older: no effect
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_failed_at) == ("paid", None)

    body, header = fake_stripe.signed_event("invoice.voided", obj, "whsec_wrong")
    assert deliver(body, header).status_code == 400
    stale = fake_stripe.signed_event(
        "invoice.voided",
        obj,
        WEBHOOK_SECRET,
        timestamp=now - settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS - 5,
    )
    assert deliver(*stale).status_code == 400
    tampered = json.loads(paid[0])
    tampered["type"] = "invoice.voided"
    assert deliver(json.dumps(tampered).encode(), paid[1]).status_code == 400
    invoice.refresh_from_db()
    assert invoice.status == "paid"

    unknown = fake_stripe.signed_event("charge.refunded", {"id": "ch_1"}, WEBHOOK_SECRET)
    assert deliver(*unknown).content == b"ignored: type not handled"

    customer = {
        "id": services.subscription_for(tenant).stripe_customer,
        "object": "customer",
        "metadata": {"tenant": tenant.public_id},
    }
    assert (
        deliver(*fake_stripe.signed_event("customer.deleted", customer, WEBHOOK_SECRET)).status_code
        == 200
    )
    assert services.subscription_for(tenant).stripe_customer == ""


def test_without_stripe_keys_billing_is_internal_and_says_so() -> None:
    world_tenant = factories.TenantFactory()
    key = factories.ApiKeyFactory(tenant=world_tenant)
    account = key_client(key).get("/v1/billing").json()
    assert account["mode"] == "internal"
    assert "Stripe is not configured" in account["mode_note"]
    assert stripe_sync.enabled() is False
    assert tasks.sync_to_stripe.apply().get() == 0


def test_only_owners_change_the_plan_and_finance_reads_billing() -> None:
    tenant = factories.TenantFactory()
    factories.PriceFactory(plan__code="growth")
    finance = verified_login(
        Client(), factories.MembershipFactory(tenant=tenant, role=Role.FINANCE).user
    )
    owner = verified_login(
        Client(), factories.MembershipFactory(tenant=tenant, role=Role.OWNER).user
    )
    editor = verified_login(
        Client(), factories.MembershipFactory(tenant=tenant, role=Role.EDITOR).user
    )
    plan = json.dumps({"plan": "growth"})
    assert finance.get("/v1/billing/invoices").status_code == 200
    assert finance.put("/v1/billing/plan", plan, content_type="application/json").status_code == 403
    assert editor.get("/v1/billing").status_code == 403
    answer = owner.put("/v1/billing/plan", plan, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["next_plan"] == "growth"
    missing = owner.put(
        "/v1/billing/plan", json.dumps({"plan": "nope"}), content_type="application/json"
    )
    assert missing.status_code == 400 and missing["Content-Type"] == "application/problem+json"


def test_exports_stream_csv_and_the_invoice_prints(world: Any) -> None:
    client = world.client
    usage = client.get("/v1/billing/usage/export")
    text = b"".join(usage.streaming_content).decode()
    assert text.splitlines()[0].startswith("id,meter,quantity,call")
    assert world.call.public_id in text
    lines = client.get(f"/v1/billing/invoices/{world.invoice.public_id}/export")
    assert "Resolved conversations" in b"".join(lines.streaming_content).decode()
    page = client.get(f"/v1/billing/invoices/{world.invoice.public_id}/document")
    assert page["Content-Type"].startswith("text/html")
    assert b"0.70 USD" in page.content and world.credit_note.public_id.encode() in page.content
