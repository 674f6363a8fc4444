"""The Stripe fake, driven through the real SDK (`stripe.StripeClient`): what it stores, how it
replays idempotent requests, how it fails, and that its webhook events verify."""

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
import stripe

from tests.fakes.stripe import FakeStripe, nest_form

JAN_1_2026 = 1767225600
SECRET = "whsec_test_secret"


@pytest.fixture(scope="module")
def running_fake() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(running_fake: FakeStripe) -> FakeStripe:
    running_fake.reset()
    return running_fake


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        fake.api_key,
        base_addresses={"api": fake.url, "meter_events": fake.url},
        max_network_retries=0,
    )


def make_customer(client: stripe.StripeClient, key: str = "cust-t_1") -> stripe.Customer:
    return client.v1.customers.create(
        {"name": "Acme", "email": "billing@acme.test", "metadata": {"tenant": "t_1"}},
        {"idempotency_key": key},
    )


def test_bracket_nested_form_fields_become_dicts_and_lists() -> None:
    pairs = parse_qsl(
        "a[0][b]=1&a[1][b]=2&metadata[tenant]=t_1&lines[0][tax_rates][]=tx_1&x=&y=3",
        keep_blank_values=True,
    )
    assert nest_form(pairs) == {
        "a": [{"b": "1"}, {"b": "2"}],
        "metadata": {"tenant": "t_1"},
        "lines": [{"tax_rates": ["tx_1"]}],
        "x": "",
        "y": "3",
    }


def test_a_customer_create_retried_with_its_key_is_replayed(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    first = make_customer(client)
    again = make_customer(client)

    assert first.id.startswith("cus_")
    assert again.id == first.id
    assert fake.replays == 1
    assert fake.keys == ["cust-t_1", "cust-t_1"]
    assert list(fake.customers) == [first.id]
    assert fake.customers[first.id]["metadata"] == {"tenant": "t_1"}
    sent = fake.requests[0]
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["stripe-version"] == stripe.api_version
    assert sent.form()["metadata[tenant]"] == ["t_1"]

    assert client.v1.customers.retrieve(first.id).email == "billing@acme.test"
    assert client.v1.customers.delete(first.id).deleted is True
    assert client.v1.customers.retrieve(first.id).deleted is True
    assert fake.customers[first.id]["deleted"] is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_nope")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_a_key_reused_with_other_parameters_is_an_idempotency_error(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    make_customer(client)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"name": "Other"}, {"idempotency_key": "cust-t_1"})
    assert len(fake.customers) == 1


def test_a_post_without_a_key_gets_a_random_one_from_the_sdk(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    client.v1.customers.create({"name": "Acme"})
    client.v1.customers.create({"name": "Acme"})
    assert len(fake.customers) == 2
    assert len(set(fake.keys)) == 2
    assert fake.replays == 0


def test_unknown_parameters_are_rejected_like_stripe(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create({"name": "Acme", "tenant": "t_1"})
    assert unknown.value.param == "tenant"
    assert unknown.value.code == "parameter_unknown"


def test_meters_are_listed_and_created(fake: FakeStripe, client: stripe.StripeClient) -> None:
    seeded = fake.add_meter("voice_seconds")
    created = client.v1.billing.meters.create(
        {
            "display_name": "SMS",
            "event_name": "sms_segments",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        },
        {"idempotency_key": "meter-sms"},
    )
    assert created.id.startswith("mtr_")
    assert created.object == "billing.meter"

    listed = client.v1.billing.meters.list({"status": "active", "limit": 100})
    assert [m.id for m in listed.data] == [seeded, created.id]
    assert listed.has_more is False
    assert {m.event_name for m in listed.data} == {"voice_seconds", "sms_segments"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meters.create(
            {
                "display_name": "Again",
                "event_name": "sms_segments",
                "default_aggregation": {"formula": "sum"},
            }
        )


def test_meter_events_count_once_per_identifier_and_sum_per_window(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    meter = fake.add_meter("voice_seconds")
    customer = make_customer(client).id
    other = make_customer(client, "cust-t_2").id

    def send(identifier: str, value: str, timestamp: int, who: str = customer) -> None:
        event = client.v1.billing.meter_events.create(
            {
                "event_name": "voice_seconds",
                "payload": {"stripe_customer_id": who, "value": value},
                "identifier": identifier,
                "timestamp": timestamp,
            },
            {"idempotency_key": f"usage-{identifier}"},
        )
        assert event.object == "billing.meter_event"
        assert event.identifier == identifier

    send("use_1", "60", JAN_1_2026)
    send("use_1", "60", JAN_1_2026)  # a replay of the same request
    # The same identifier under a fresh key: not counted again, the original comes back.
    client.v1.billing.meter_events.create(
        {
            "event_name": "voice_seconds",
            "payload": {"stripe_customer_id": customer, "value": "999"},
            "identifier": "use_1",
            "timestamp": JAN_1_2026,
        },
        {"idempotency_key": "another-key"},
    )
    send("use_2", "-10", JAN_1_2026 + 3599)
    send("use_3", "500", JAN_1_2026 + 3600)  # outside [start, end)
    send("use_4", "7", JAN_1_2026, who=other)

    assert [e["identifier"] for e in fake.meter_events] == ["use_1", "use_2", "use_3", "use_4"]
    summaries = client.v1.billing.meters.event_summaries.list(
        meter,
        {"customer": customer, "start_time": JAN_1_2026, "end_time": JAN_1_2026 + 3600},
    )
    [summary] = summaries.data
    assert summary.object == "billing.meter_event_summary"
    assert summary.aggregated_value == 50.0
    assert (summary.start_time, summary.end_time, summary.meter) == (
        JAN_1_2026,
        JAN_1_2026 + 3600,
        meter,
    )


@pytest.mark.parametrize(
    ("event_name", "payload"),
    [
        ("no_such_meter", {"stripe_customer_id": "cus_1", "value": "1"}),
        ("voice_seconds", {"value": "1"}),
        ("voice_seconds", {"stripe_customer_id": "cus_1"}),
        ("voice_seconds", {"stripe_customer_id": "cus_1", "value": "1.5"}),
    ],
    ids=["unknown-meter", "no-customer", "no-value", "not-an-integer"],
)
def test_bad_meter_events_are_rejected(
    fake: FakeStripe, client: stripe.StripeClient, event_name: str, payload: dict[str, str]
) -> None:
    fake.add_meter("voice_seconds")
    with pytest.raises(stripe.InvalidRequestError) as rejected:
        client.v1.billing.meter_events.create(
            {"event_name": event_name, "payload": payload, "identifier": "use_x"}
        )
    assert rejected.value.http_status == 400
    assert fake.meter_events == []


def test_an_invoice_is_drafted_filled_finalized_and_credited(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer = make_customer(client).id
    invoice = client.v1.invoices.create(
        {
            "customer": customer,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "currency": "usd",
            "metadata": {"period": "2026-01"},
        },
        {"idempotency_key": "invoice-t_1-2026-01"},
    )
    assert invoice.id.startswith("in_")
    assert (invoice.status, invoice.total, invoice.amount_due) == ("draft", 0, 0)

    item = client.v1.invoice_items.create(
        {
            "customer": customer,
            "invoice": invoice.id,
            "amount": 1234,
            "currency": "usd",
            "description": "Voice minutes",
            "metadata": {"period": "2026-01"},
        },
        {"idempotency_key": "item-t_1-2026-01-voice"},
    )
    assert item.id.startswith("ii_")
    assert item.object == "invoiceitem"
    assert fake.invoices[invoice.id]["total"] == 1234
    assert [i["id"] for i in fake.items_of(invoice.id)] == [item.id]

    finalized = client.v1.invoices.finalize_invoice(
        invoice.id, {}, {"idempotency_key": "finalize-t_1-2026-01"}
    )
    assert (finalized.status, finalized.amount_due) == ("open", 1234)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.create(
            {"customer": customer, "invoice": invoice.id, "amount": 1, "currency": "usd"}
        )

    note = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [
                {
                    "type": "custom_line_item",
                    "description": "Goodwill",
                    "quantity": 1,
                    "unit_amount": 70,
                }
            ],
            "metadata": {"reason": "outage"},
        },
        {"idempotency_key": "credit-t_1-outage"},
    )
    assert note.id.startswith("cn_")
    assert (note.object, note.total) == ("credit_note", 70)
    fetched = client.v1.invoices.retrieve(invoice.id)
    assert (fetched.status, fetched.amount_due, fetched.total) == ("open", 1164, 1234)
    assert len(fake.credit_notes) == 1

    fake.pay(invoice.id)
    assert fake.invoice_object(invoice.id)["amount_paid"] == 1164
    with pytest.raises(stripe.InvalidRequestError):  # post-payment: say where the money goes
        client.v1.credit_notes.create({"invoice": invoice.id, "amount": 100})
    paid_note = client.v1.credit_notes.create(
        {"invoice": invoice.id, "amount": 100, "out_of_band_amount": 100}
    )
    assert paid_note.type == "post_payment"


def test_only_open_invoices_are_voided(client: stripe.StripeClient) -> None:
    customer = make_customer(client).id
    invoice = client.v1.invoices.create(
        {"customer": customer, "collection_method": "send_invoice", "days_until_due": 30}
    )
    client.v1.invoice_items.create(
        {"customer": customer, "invoice": invoice.id, "amount": 500, "currency": "usd"}
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(invoice.id)
    client.v1.invoices.finalize_invoice(invoice.id)
    assert client.v1.invoices.void_invoice(invoice.id).status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1})


def test_an_injected_failure_applies_nothing_and_a_retry_with_the_key_succeeds(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    fake.fail_next("POST", r"/v1/customers")
    with pytest.raises(stripe.APIError) as failed:
        make_customer(client)
    assert failed.value.http_status == 500
    assert fake.customers == {}

    customer = make_customer(client)
    assert list(fake.customers) == [customer.id]
    assert fake.keys == ["cust-t_1", "cust-t_1"]
    assert fake.replays == 0


def test_a_wrong_api_key_is_an_authentication_error(fake: FakeStripe) -> None:
    wrong = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": fake.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.customers.create({"name": "Acme"})
    assert fake.customers == {}


def test_signed_events_verify_with_the_sdk(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = make_customer(client).id
    invoice = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    body, header = fake.signed_event(
        "invoice.paid", fake.invoice_object(invoice.id), SECRET, event_id="evt_1"
    )

    event = stripe.Webhook.construct_event(body, header, SECRET, tolerance=300)
    assert (event.id, event.type) == ("evt_1", "invoice.paid")
    assert event.data.object["id"] == invoice.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_other", tolerance=300)
    _, stale = fake.signed_event("invoice.paid", {}, SECRET, timestamp=int(time.time()) - 600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, stale, SECRET, tolerance=300)
