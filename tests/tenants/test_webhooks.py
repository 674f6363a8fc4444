"""Webhooks to tenants against a flaky local receiver: Standard Webhooks signatures the
receiver's own library verifies, retries on a schedule, order per subject, no repeats after
success, auto-disable with the tenant told, replay, secret rotation and the SSRF guard."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from openai import OpenAI
from openai._exceptions import InvalidWebhookSignatureError

from tenants import webhooks
from tenants.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from tests import factories
from tests.conftest import TenantWorld
from tests.fakes.server import FakeServer, Recorded, Reply


class FlakyReceiver:
    """Answers the statuses in `script` in turn, then 200; keeps what it accepted."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.accepted: list[Recorded] = []
        self.server = FakeServer()
        self.server.route("POST", "/hook", self._receive)
        self.server.start()

    def _receive(self, request: Recorded, match: Any) -> Reply:
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            self.accepted.append(request)
        return Reply(status, {"ok": status == 200})

    @property
    def url(self) -> str:
        return self.server.url + "/hook"

    def types(self) -> list[str]:
        return [json.loads(r.body)["type"] for r in self.accepted]


@pytest.fixture
def receiver(settings: Any) -> Any:
    flaky = FlakyReceiver()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    yield flaky
    flaky.server.stop()


def endpoint_for(receiver: FlakyReceiver, **fields: Any) -> WebhookEndpoint:
    return factories.WebhookEndpointFactory(
        url=receiver.url, secrets={"current": webhooks.new_secret()}, **fields
    )


def attempt_due(tenant: Any) -> list[str]:
    """What the sweep would do now, after making every pending delivery due."""
    WebhookDelivery.all_tenants.filter(tenant=tenant, status="pending").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    return [webhooks.deliver(tenant, pk) for pk in webhooks.due(tenant, timezone.now())]


def verify(request: Recorded, secret: str) -> Any:
    return OpenAI(api_key="unused").webhooks.verify_signature(
        request.body, request.headers, secret=secret
    )


@pytest.mark.django_db
def test_signed_deliveries_are_retried_until_they_succeed_and_never_repeated(
    receiver: FlakyReceiver,
) -> None:
    endpoint = endpoint_for(receiver)
    tenant = endpoint.tenant
    receiver.script = [500, 503]
    assert webhooks.emit(tenant, "call.completed", subject="call_1", key="c", data={"id": 1}) == 1
    assert webhooks.emit(tenant, "call.completed", subject="call_1", key="c", data={"id": 1}) == 0
    delivery = WebhookDelivery.all_tenants.get(endpoint=endpoint)

    assert attempt_due(tenant) == ["retry"]
    delivery.refresh_from_db()
    first_wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=4) <= first_wait <= timedelta(seconds=6)
    assert (delivery.attempts, delivery.last_status_code) == (1, 500)
    assert attempt_due(tenant) == ["retry"]
    assert attempt_due(tenant) == ["delivered"]
    assert attempt_due(tenant) == []
    assert webhooks.deliver(tenant, delivery.pk) == "skipped"
    assert len(receiver.accepted) == 1
    request = receiver.accepted[0]
    assert request.headers["webhook-id"] == delivery.public_id
    event = json.loads(request.body)
    assert (event["type"], event["data"]) == ("call.completed", {"id": 1})
    verify(request, endpoint.secrets["current"])
    with pytest.raises(InvalidWebhookSignatureError):
        verify(request, webhooks.new_secret())


def test_the_retry_schedule_spans_more_than_a_day() -> None:
    assert sum(webhooks.RETRY_DELAYS) * 0.8 > 24 * 3600


@pytest.mark.django_db
def test_events_about_one_call_arrive_in_order(receiver: FlakyReceiver) -> None:
    endpoint = endpoint_for(receiver)
    tenant = endpoint.tenant
    receiver.script = [500]
    webhooks.emit(tenant, "call.completed", subject="call_9", key="a", data={})
    webhooks.emit(tenant, "call.outcome_tagged", subject="call_9", key="b", data={})
    webhooks.emit(tenant, "call.completed", subject="call_10", key="a", data={})
    outcomes = attempt_due(tenant)
    # The first event about call_9 failed, so the second waits; call_10 is not held up.
    assert sorted(outcomes) == ["delivered", "retry", "waiting"]
    assert receiver.types() == ["call.completed"]
    while WebhookDelivery.all_tenants.filter(tenant=tenant, status="pending").exists():
        attempt_due(tenant)
    subjects = [
        (json.loads(r.body)["type"], r.headers["webhook-id"]) for r in receiver.accepted[1:]
    ]
    assert [t for t, _ in subjects] == ["call.completed", "call.outcome_tagged"]


@pytest.mark.django_db
def test_an_endpoint_that_keeps_failing_is_disabled_and_the_tenant_told(
    receiver: FlakyReceiver,
) -> None:
    endpoint = endpoint_for(receiver)
    tenant = endpoint.tenant
    factories.MembershipFactory(tenant=tenant, role="owner", user__email="owner@acme.test")
    receiver.script = [500] * (len(webhooks.RETRY_DELAYS) + 1)
    webhooks.emit(tenant, "call.completed", subject="call_1", key="a", data={})
    webhooks.emit(tenant, "call.outcome_tagged", subject="call_1", key="b", data={})
    results = []
    for _ in range(len(webhooks.RETRY_DELAYS) + 1):
        results += attempt_due(tenant)
    assert results.count("retry") == len(webhooks.RETRY_DELAYS)
    assert "failed" in results
    endpoint.refresh_from_db()
    assert endpoint.status == "disabled" and "attempts" in endpoint.disabled_reason
    assert set(
        WebhookDelivery.all_tenants.filter(endpoint=endpoint).values_list("status", flat=True)
    ) == {"failed"}
    assert AuditEvent.all_tenants.filter(
        action="webhook_endpoint.disabled", target_id=endpoint.public_id
    ).exists()
    assert webhooks.emit(tenant, "call.completed", subject="call_2", key="a", data={}) == 0


@pytest.mark.django_db(transaction=True)
def test_the_owner_is_emailed_when_an_endpoint_is_disabled(receiver: FlakyReceiver) -> None:
    endpoint = endpoint_for(receiver)
    factories.MembershipFactory(tenant=endpoint.tenant, role="owner", user__email="o@acme.test")
    delivery = factories.WebhookDeliveryFactory(
        endpoint=endpoint,
        status="pending",
        attempts=len(webhooks.RETRY_DELAYS),
        next_attempt_at=timezone.now(),
    )
    receiver.script = [500]
    assert webhooks.deliver(endpoint.tenant, delivery.pk) == "failed"
    [message] = [m for m in mail.outbox if "o@acme.test" in m.to]
    assert endpoint.url in message.body and "enable" in message.body


@pytest.mark.django_db
def test_a_rotated_secret_signs_alongside_the_old_one_for_a_day(
    world: TenantWorld, receiver: FlakyReceiver
) -> None:
    endpoint = endpoint_for(receiver, tenant=world.tenant)
    old = endpoint.secrets["current"]
    response = world.client.post(f"/v1/webhook-endpoints/{endpoint.public_id}/rotate-secret")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    webhooks.emit(world.tenant, "call.completed", subject="call_1", key="a", data={})
    attempt_due(world.tenant)
    request = receiver.accepted[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(request, old)
    verify(request, new)
    endpoint.refresh_from_db()
    later = timezone.now() + webhooks.ROTATION_OVERLAP + timedelta(minutes=1)
    assert webhooks.signing_secrets(endpoint, later) == [new]


@pytest.mark.django_db
def test_replay_sends_the_event_again_as_a_new_delivery(
    world: TenantWorld, receiver: FlakyReceiver
) -> None:
    endpoint = endpoint_for(receiver, tenant=world.tenant)
    webhooks.emit(world.tenant, "call.completed", subject="call_7", key="a", data={"n": 1})
    attempt_due(world.tenant)
    original = WebhookDelivery.all_tenants.get(endpoint=endpoint, subject="call_7")
    response = world.client.post(f"/v1/webhook-deliveries/{original.public_id}/replay")
    assert response.status_code == 201, response.content
    copy = response.json()
    assert copy["replay_of"] == original.public_id and copy["id"] != original.public_id
    attempt_due(world.tenant)
    assert [json.loads(r.body)["data"] for r in receiver.accepted] == [{"n": 1}, {"n": 1}]
    assert receiver.accepted[1].headers["webhook-id"] == copy["id"]
    log = world.client.get(f"/v1/webhook-deliveries?endpoint={endpoint.public_id}").json()
    assert {d["status"] for d in log["results"]} == {"delivered"}


@pytest.mark.django_db
def test_the_secret_is_shown_once_and_urls_pass_the_ssrf_guard(world: TenantWorld) -> None:
    created = world.client.post(
        "/v1/webhook-endpoints",
        {"url": "https://93.184.215.14/hooks", "event_types": ["call.outcome_tagged"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")
    shown = world.client.get(f"/v1/webhook-endpoints/{created.json()['id']}").json()
    assert "secret" not in shown and shown["event_types"] == ["call.outcome_tagged"]
    for url, why in [
        ("https://127.0.0.1/hook", "cannot receive webhooks"),
        ("https://169.254.169.254/latest", "cannot receive webhooks"),
        ("http://93.184.215.14/hook", "Use https"),
        ("ftp://example.com/x", "http(s) URL"),
    ]:
        refused = world.client.post("/v1/webhook-endpoints", {"url": url}, format="json")
        assert refused.status_code == 400, url
        assert why in json.dumps(refused.json()), refused.json()
    unknown = world.client.post(
        "/v1/webhook-endpoints",
        {"url": "https://93.184.215.14/h", "event_types": ["call.exploded"]},
        format="json",
    )
    assert unknown.status_code == 400 and "call.exploded" in json.dumps(unknown.json())


@pytest.mark.django_db
def test_an_endpoint_only_gets_the_events_it_asked_for(receiver: FlakyReceiver) -> None:
    endpoint = endpoint_for(receiver, event_types=["call.outcome_changed"])
    tenant = endpoint.tenant
    assert webhooks.emit(tenant, "call.completed", subject="c", key="a", data={}) == 0
    assert webhooks.emit(tenant, "call.outcome_changed", subject="c", key="b", data={}) == 1
