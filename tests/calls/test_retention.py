"""Retention: the daily task removes, per tenant, exactly what is older than the tenant's
periods (recordings with their files, what was said, webhook bodies) and nothing else; calls,
outcomes and billing stay. The clock is frozen with time_machine."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.storage import default_storage

from billing.models import Invoice, UsageEvent
from calls import lifecycle, tasks
from calls.models import Call, CallEvent, Outcome, RetentionCheckpoint
from tenants.models import AuditEvent, IdempotencyKey, Tenant, WebhookDelivery
from tests import factories as f
from tests.calls.lifecycle_data import (
    PERSONAL,
    conversation_kept,
    conversation_removed,
    personal_call,
    stored_response,
)
from tests.conftest import TenantWorld

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def ledger(tenant: Tenant) -> list[dict[str, Any]]:
    return list(UsageEvent.all_tenants.filter(tenant=tenant).order_by("pk").values())


def run(tenant: Tenant) -> dict[str, int]:
    """The per-tenant task, as the worker runs it (in its tenant's context)."""
    result: dict[str, int] = tasks.apply_tenant_retention.apply(args=[tenant.pk]).get()
    return result


def test_each_period_removes_exactly_what_is_older_per_tenant(
    clock: Any, world: TenantWorld, other_world: TenantWorld
) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(
        recording_retention_days=30, transcript_retention_days=90, webhook_body_retention_days=10
    )
    # The other tenant keeps everything longer: the same ages are inside its periods.
    Tenant.objects.filter(pk=other_world.tenant.pk).update(
        recording_retention_days=365, transcript_retention_days=365, webhook_body_retention_days=365
    )
    endpoint = world.webhook_endpoint
    fresh = personal_call(world, started_at=days_ago(5))
    mid = personal_call(world, started_at=days_ago(45))  # recording past, transcript not
    old = personal_call(world, started_at=days_ago(120))  # both past
    edge = personal_call(world, started_at=days_ago(30) + timedelta(minutes=1))  # just inside
    theirs = personal_call(other_world, started_at=days_ago(120))
    old_response = stored_response(world, old, created_at=days_ago(11))
    new_response = stored_response(world, fresh, created_at=days_ago(1))
    pending = f.WebhookDeliveryFactory(
        endpoint=endpoint,
        subject=old.public_id,
        event_type="call.outcome_changed",
        event_key=f"{old.public_id}:changed",
        status=WebhookDelivery.Status.PENDING,
        payload={"type": "call.outcome_changed", "data": {"caller": PERSONAL["number"]}},
        created_at=days_ago(20),
    )
    mid_recording = mid.recording.name
    billing_before = (ledger(world.tenant), ledger(other_world.tenant))
    invoices_before = list(Invoice.all_tenants.order_by("pk").values("pk", "total", "quantities"))

    removed = run(world.tenant)

    assert removed == {
        "calls": 0,
        "recordings": 2,  # mid and old
        "transcript_turns": 2,  # old's two turns
        "tool_calls": 1,
        "keypad_entries": 1,
        "summaries": 1,
        "outcomes": 1,
        "webhook_bodies": 3,  # mid's, old's and edge's call.completed; fresh's is young
        "stored_responses": 1,
    }
    for call in (fresh, mid, old, edge, theirs):
        call.refresh_from_db()
    # Recordings: gone from the rows and from the storage, past the period only.
    assert (mid.recording.name, old.recording.name) == ("", "")
    assert not default_storage.exists(mid_recording)
    assert mid.recording_duration_ms is None and mid.recording_sha256 == ""
    assert (mid.recording_expired_at, old.recording_expired_at) == (NOW, NOW)
    for kept in (fresh, edge, theirs):
        assert kept.recording and default_storage.exists(kept.recording.name)
        assert kept.recording_expired_at is None
    # What was said: only the call past 90 days.
    conversation_removed(old, "retention")
    assert old.transcript_expired_at == NOW
    for kept in (fresh, mid, edge, theirs):
        conversation_kept(kept)
        assert kept.transcript_expired_at is None
    # The call and its outcome stay, with what billing and reports need.
    assert (old.status, old.duration_seconds, old.caller) == ("completed", 42, PERSONAL["number"])
    outcome = Outcome.objects.for_tenant(world.tenant).get(call=old)
    assert (outcome.label, outcome.resolved, outcome.source) == ("resolved", True, "model")
    assert outcome.evidence == [{"kind": "transcript", "sequence": 1}]
    # Webhook bodies: older than 10 days and settled; the log itself stays.
    deliveries = WebhookDelivery.objects.for_tenant(world.tenant)
    for call in (mid, old, edge):
        body = deliveries.get(subject=call.public_id, event_type="call.completed").payload
        assert body == {
            "type": "call.completed",
            "timestamp": body["timestamp"],
            "data": {"id": call.public_id},
            "removed": "retention",
        }
    body = deliveries.get(subject=fresh.public_id, event_type="call.completed").payload
    assert body["data"]["caller"] == PERSONAL["number"]
    retried = WebhookDelivery.objects.for_tenant(world.tenant).get(pk=pending.pk)
    assert retried.payload["data"]["caller"] == PERSONAL["number"]  # still being retried
    theirs_delivery = WebhookDelivery.objects.for_tenant(other_world.tenant).get(
        subject=theirs.public_id
    )
    assert theirs_delivery.payload["data"]["caller"] == PERSONAL["number"]
    # Stored API responses older than the webhook-body period.
    assert (
        IdempotencyKey.objects.for_tenant(world.tenant).get(pk=old_response.pk).response_body
        is None
    )
    assert IdempotencyKey.objects.for_tenant(world.tenant).get(pk=new_response.pk).response_body
    # Billing is untouched, in both tenants.
    assert (ledger(world.tenant), ledger(other_world.tenant)) == billing_before
    assert (
        list(Invoice.all_tenants.order_by("pk").values("pk", "total", "quantities"))
        == invoices_before
    )
    # One audit event for the run, with the counts.
    audit = AuditEvent.objects.for_tenant(world.tenant).get(action="retention.applied")
    assert (audit.actor_type, audit.target_id) == ("system", world.tenant.public_id)
    assert audit.changes == {name: [None, count] for name, count in removed.items() if count}
    assert not AuditEvent.objects.for_tenant(other_world.tenant).filter(action="retention.applied")


def test_running_again_changes_nothing_and_audits_nothing(clock: Any, world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(
        recording_retention_days=1, transcript_retention_days=1, webhook_body_retention_days=1
    )
    personal_call(world, started_at=days_ago(3))
    run(world.tenant)
    rows = {
        "calls": list(Call.objects.for_tenant(world.tenant).order_by("pk").values()),
        "events": list(CallEvent.objects.for_tenant(world.tenant).order_by("pk").values()),
        "deliveries": list(
            WebhookDelivery.objects.for_tenant(world.tenant).order_by("pk").values()
        ),
    }
    audits = AuditEvent.objects.for_tenant(world.tenant).filter(action="retention.applied")
    assert audits.count() == 1

    clock.shift(timedelta(hours=1))
    again = run(world.tenant)

    assert not any(again.values())
    assert audits.count() == 1
    assert rows == {
        "calls": list(Call.objects.for_tenant(world.tenant).order_by("pk").values()),
        "events": list(CallEvent.objects.for_tenant(world.tenant).order_by("pk").values()),
        "deliveries": list(
            WebhookDelivery.objects.for_tenant(world.tenant).order_by("pk").values()
        ),
    }


def test_a_shorter_period_takes_effect_at_the_next_run(clock: Any, world: TenantWorld) -> None:
    call = personal_call(world, started_at=days_ago(40))
    run(world.tenant)  # the defaults: 90, 365 and 30 days
    call.refresh_from_db()
    assert call.recording and call.recording_expired_at is None

    Tenant.objects.filter(pk=world.tenant.pk).update(recording_retention_days=7)
    clock.shift(timedelta(days=1))
    run(world.tenant)

    call.refresh_from_db()
    assert not call.recording
    conversation_kept(call)


def test_calls_still_live_or_being_processed_wait(clock: Any, world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(
        recording_retention_days=1, transcript_retention_days=1
    )
    waiting = personal_call(world, started_at=days_ago(3))
    f.PostCallJobFactory(call=waiting)  # its after-call work has not finished
    live = f.CallFactory(
        phone_number=world.phone_number, status=Call.Status.IN_PROGRESS, started_at=days_ago(3)
    )
    run(world.tenant)
    waiting.refresh_from_db()
    live.refresh_from_db()
    conversation_kept(waiting)
    assert waiting.recording and waiting.recording_expired_at is None
    assert live.transcript_expired_at is None


def test_a_backlog_is_worked_off_in_bounded_runs(
    clock: Any, world: TenantWorld, monkeypatch: pytest.MonkeyPatch, celery_eager: Any
) -> None:
    monkeypatch.setattr(lifecycle, "BATCH", 2)
    monkeypatch.setattr(lifecycle, "MAX_BATCHES", 2)
    Tenant.objects.filter(pk=world.tenant.pk).update(
        recording_retention_days=1, transcript_retention_days=1, webhook_body_retention_days=1
    )
    calls = [personal_call(world, started_at=days_ago(10 + n)) for n in range(5)]
    world.tenant.refresh_from_db()

    first = lifecycle.retention_apply(tenant=world.tenant, actor=_system())
    assert first.more and first.removed.recordings == 4  # two batches of two
    # The task queues the rest of the backlog itself, run after run, until it is done.
    tasks.apply_tenant_retention.delay(world.tenant.pk)

    for call in calls:
        call.refresh_from_db()
        assert not call.recording and call.recording_expired_at == NOW
        conversation_removed(call, "retention")
    assert (
        not WebhookDelivery.objects.for_tenant(world.tenant)
        .filter(subject__in=[c.public_id for c in calls])
        .exclude(payload__has_key="removed")
    )
    checkpoint = RetentionCheckpoint.objects.for_tenant(world.tenant).get()
    assert checkpoint.webhook_bodies_through == days_ago(1)
    runs = AuditEvent.objects.for_tenant(world.tenant).filter(action="retention.applied")
    totals: dict[str, int] = {}
    for audit in runs:
        for name, (_, count) in audit.changes.items():
            totals[name] = totals.get(name, 0) + count
    assert totals["recordings"] == 5 and totals["transcript_turns"] == 10


def test_the_daily_sweep_queues_every_tenant(
    clock: Any, world: TenantWorld, other_world: TenantWorld, celery_eager: Any
) -> None:
    Tenant.objects.filter(pk__in=[world.tenant.pk, other_world.tenant.pk]).update(
        recording_retention_days=1
    )
    mine = personal_call(world, started_at=days_ago(2))
    theirs = personal_call(other_world, started_at=days_ago(2))

    assert tasks.apply_retention.delay().get() == Tenant.objects.count()

    for call in (mine, theirs):
        call.refresh_from_db()
        assert not call.recording


def test_the_sweep_is_scheduled_daily() -> None:
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["apply-retention"]
    assert entry == {"task": "calls.tasks.apply_retention", "schedule": 86400.0}


def _system() -> Any:
    from tenants.access import Actor

    return Actor.system("retention")
