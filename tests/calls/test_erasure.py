"""Erasure: `POST /v1/erasures` removes the personal data of every call of the tenant where a
number was the caller or the callee, everywhere it is kept, and nothing else: other callers'
calls, other tenants' calls from the same number and billing stay as they were."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.utils import timezone

from billing.models import UsageEvent
from calls import services
from calls.models import Call, Erasure
from tenants.access import Actor
from tenants.models import AuditEvent, IdempotencyKey, TenantOwnedModel, WebhookDelivery
from tenants.roles import Role
from tests import factories as f
from tests.calls.lifecycle_data import (
    PERSONAL,
    conversation_kept,
    conversation_removed,
    no_trace_of,
    personal_call,
    stored_response,
)
from tests.conftest import TenantWorld

pytestmark = pytest.mark.django_db

NUMBER = PERSONAL["number"]
SOMEONE_ELSE = "+15005550122"


def erase(client: Any, number: str = NUMBER) -> Any:
    return client.post("/v1/erasures", {"phone_number": number}, format="json")


def earlier() -> Any:
    return timezone.now() - timedelta(days=3)


def rows_mentioning(world: TenantWorld, needle: str) -> list[str]:
    """Every row the tenant owns, in any table, whose stored values mention `needle`."""
    found = []
    for model in apps.get_models():
        if issubclass(model, TenantOwnedModel):
            for row in model.all_tenants.filter(tenant=world.tenant).values():
                if needle in json.dumps(row, default=str):
                    found.append(f"{model._meta.label} {row['id']}")
    return found


def test_the_numbers_data_is_removed_everywhere_and_nothing_else(
    world: TenantWorld, other_world: TenantWorld
) -> None:
    inbound = personal_call(world, started_at=earlier())
    outbound = personal_call(world, started_at=earlier(), outbound=True)
    other_caller = personal_call(world, started_at=earlier(), number=SOMEONE_ELSE)
    elsewhere = personal_call(other_world, started_at=earlier())  # the same number
    # A member corrected an outcome before the request came: audited, and sent to webhooks.
    services.outcome_set(
        call=inbound,
        actor=Actor.for_membership(world.owner),
        label="escalated",
        rationale=f"{PERSONAL['name']} wanted a person.",
    )
    pending = f.WebhookDeliveryFactory(
        endpoint=world.webhook_endpoint,
        subject=outbound.public_id,
        event_type="call.outcome_changed",
        event_key=f"{outbound.public_id}:changed",
        status=WebhookDelivery.Status.PENDING,
        payload={"type": "call.outcome_changed", "data": {"caller": NUMBER}},
    )
    replayable = stored_response(world, inbound, created_at=timezone.now())
    unrelated = stored_response(world, other_caller, created_at=timezone.now())
    files = [inbound.recording.name, outbound.recording.name]
    assert rows_mentioning(world, NUMBER)  # the test data holds the number in many places

    def billing() -> dict[int, list[dict[str, Any]]]:
        return {
            t.pk: list(UsageEvent.all_tenants.filter(tenant=t).order_by("pk").values())
            for t in (world.tenant, other_world.tenant)
        }

    ledger = billing()
    untouched = {
        c.pk: Call.all_tenants.filter(pk=c.pk).values().get() for c in (other_caller, elsewhere)
    }

    response = erase(world.session_client(Role.ADMIN))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("era_")
    assert body["counts"] == {
        "calls": 2,
        "recordings": 2,
        "transcript_turns": 4,
        "tool_calls": 2,
        "keypad_entries": 2,
        "summaries": 2,
        "outcomes": 2,
        # call.completed for both, the correction's call.outcome_changed, the pending one
        "webhook_bodies": 4,
        "stored_responses": 1,
    }
    assert body["requested_by"] == {
        "type": "user",
        "id": body["requested_by"]["id"],
        "label": body["requested_by"]["label"],
    }
    assert NUMBER not in response.content.decode()
    # Nothing the tenant keeps holds the number any more, in any table.
    assert rows_mentioning(world, NUMBER) == []
    for call in (inbound, outbound):
        call.refresh_from_db()
        conversation_removed(call, "erasure")
        no_trace_of(world, call, NUMBER, PERSONAL["name"], PERSONAL["email"])
        assert call.erased_at is not None
        assert (call.summary, call.extracted) == ("", {})
        # What billing and reports need stays.
        assert (call.status, call.duration_seconds, call.end_reason) == (
            "completed",
            42,
            "caller_hangup",
        )
    assert (inbound.caller, inbound.callee) == ("[erased]", world.phone_number.e164)
    assert (outbound.caller, outbound.callee) == (world.phone_number.e164, "[erased]")
    assert not any(default_storage.exists(name) for name in files)
    outcome = inbound.outcomes.get()  # set by hand: the label stays, the note about her goes
    assert (outcome.label, outcome.source, outcome.rationale) == ("escalated", "human", "")
    held = WebhookDelivery.objects.for_tenant(world.tenant).get(pk=pending.pk)
    assert (held.status, held.payload["removed"]) == ("failed", "erasure")
    stored = IdempotencyKey.objects.for_tenant(world.tenant)
    assert stored.get(pk=replayable.pk).response_body is None
    assert stored.get(pk=unrelated.pk).response_body is not None
    # Other callers, and the other tenant's calls from the same number, are untouched.
    for call in (other_caller, elsewhere):
        assert Call.all_tenants.filter(pk=call.pk).values().get() == untouched[call.pk]
        conversation_kept(call)
        assert default_storage.exists(call.recording.name)
    assert NUMBER in json.dumps(
        list(WebhookDelivery.all_tenants.filter(subject=elsewhere.public_id).values("payload"))
    )
    # Billing is unchanged, and never held the number.
    assert billing() == ledger
    assert NUMBER not in json.dumps(ledger, default=str)
    # Recorded and audited, without the number.
    erasure = Erasure.objects.for_tenant(world.tenant).get(public_id=body["id"])
    stored_erasure = Erasure.all_tenants.filter(pk=erasure.pk).values().get()
    assert NUMBER not in json.dumps(stored_erasure, default=str)
    audit = AuditEvent.objects.for_tenant(world.tenant).get(action="erasure.create")
    assert (audit.target_id, audit.actor_type) == (erasure.public_id, "user")
    assert audit.changes["calls"] == [None, 2]
    for event in AuditEvent.objects.for_tenant(world.tenant):
        text = json.dumps([event.target_label, event.changes])
        assert NUMBER not in text and PERSONAL["name"] not in text, text


def test_a_call_still_live_or_being_processed_makes_it_wait(world: TenantWorld) -> None:
    done = personal_call(world, started_at=earlier())
    waiting = personal_call(world, started_at=earlier())
    job = f.PostCallJobFactory(call=waiting)
    client = world.client

    response = erase(client)
    assert response.status_code == 409
    assert response.json()["code"] == "call_in_progress"
    for call in (done, waiting):
        conversation_kept(call)
    assert not Erasure.objects.for_tenant(world.tenant).exclude(pk=world.erasure.pk).exists()

    job.finished_at = timezone.now()
    job.save()
    f.CallFactory(phone_number=world.phone_number, caller=NUMBER, status=Call.Status.RINGING)
    assert erase(client).status_code == 409  # a live call waits too


@pytest.mark.parametrize(
    ("number", "code"),
    [("5005550111", "invalid"), ("+1 500 555 0111", "invalid"), ("+0123", "invalid"), ("", None)],
)
def test_a_number_not_in_e164_is_refused(world: TenantWorld, number: str, code: Any) -> None:
    response = erase(world.client, number)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "phone_number"


def test_the_tenants_own_number_is_refused(world: TenantWorld) -> None:
    response = erase(world.client, world.phone_number.e164)
    assert response.status_code == 400
    assert response.json()["code"] == "own_number"
    assert Call.objects.for_tenant(world.tenant).get(pk=world.call.pk).erased_at is None


def test_erasures_are_listed_and_found_by_number_never_shown(world: TenantWorld) -> None:
    personal_call(world, started_at=earlier())
    first = erase(world.client).json()
    again = erase(world.client).json()  # the calls are erased already: nothing left to find
    assert again["counts"]["calls"] == 0
    other = erase(world.client, SOMEONE_ELSE).json()

    listed = world.client.get("/v1/erasures").json()["results"]
    assert [e["id"] for e in listed] == [
        other["id"],
        again["id"],
        first["id"],
        world.erasure.public_id,
    ]
    found = world.client.get("/v1/erasures", {"phone_number": NUMBER}).json()["results"]
    assert [e["id"] for e in found] == [again["id"], first["id"]]
    shown = world.client.get(f"/v1/erasures/{first['id']}").json()
    assert shown == first
    assert NUMBER not in json.dumps(listed)
    bad = world.client.get("/v1/erasures", {"phone_number": "nope"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "phone_number"


def test_members_without_privacy_write_cannot_erase(world: TenantWorld) -> None:
    personal_call(world, started_at=earlier())
    for role in (Role.EDITOR, Role.FINANCE, Role.VIEWER):
        response = erase(world.session_client(role))
        assert response.status_code == 403
        assert "privacy:write" in response.json()["detail"]
    assert world.session_client(Role.VIEWER).get("/v1/erasures").status_code == 403
    assert rows_mentioning(world, NUMBER)


def test_an_erased_call_can_be_set_by_hand_but_not_decided_again(world: TenantWorld) -> None:
    call = personal_call(world, started_at=earlier())
    erase(world.client)
    client = world.client

    retag = client.post(f"/v1/calls/{call.public_id}/retag")
    assert retag.status_code == 409
    assert retag.json()["code"] == "conversation_removed"

    changed = client.put(
        f"/v1/calls/{call.public_id}/outcome", {"label": "escalated"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    shown = changed.json()
    assert (shown["caller"], shown["summary"], shown["extracted"]) == ("[erased]", "", {})
    assert shown["erased_at"] is not None
    assert shown["outcome"]["evidence"] == [{"kind": "transcript", "sequence": 1}]
    sent = WebhookDelivery.objects.for_tenant(world.tenant).get(
        subject=call.public_id, event_type="call.outcome_changed"
    )
    assert NUMBER not in json.dumps(sent.payload)
    assert sent.payload["data"]["caller"] == "[erased]"
    transcript = client.get(f"/v1/calls/{call.public_id}/transcript").json()
    assert [turn["text"] for turn in transcript] == ["[removed: erasure]"] * 2
