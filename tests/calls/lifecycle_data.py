"""Calls full of one caller's personal data, in every place the product keeps it, and checks
that it is (or is not) still there: shared by the retention and erasure tests."""

import json
from datetime import datetime, timedelta

from django.core.files.storage import default_storage

from calls import lifecycle, pipeline, recordings
from calls.models import Call, CallEvent, Outcome
from tenants.models import IdempotencyKey, WebhookDelivery
from tests import factories as f
from tests.conftest import TenantWorld

PERSONAL = {
    "number": "+15005550111",
    "name": "Jane Roe",
    "email": "jane.roe@example.com",
    "digit": "7",
}


def personal_call(
    world: TenantWorld,
    *,
    started_at: datetime,
    number: str = PERSONAL["number"],
    outbound: bool = False,
) -> Call:
    """An ended, processed call with `number` on the far end: two transcript turns, a tool call
    with arguments and a result, a keypad digit, a summary and extracted fields, a model's
    outcome quoting the caller, a recording, a delivered `call.completed` webhook and its usage
    event."""
    ends = (
        {"direction": "outbound", "caller": world.phone_number.e164, "callee": number}
        if outbound
        else {"caller": number}
    )
    call = f.CallFactory(
        phone_number=world.phone_number,
        started_at=started_at,
        processed_at=started_at + timedelta(minutes=1),
        summary=f"{PERSONAL['name']} asked to move her appointment.",
        extracted={"contact_reason": "reschedule", "fields": {"name": PERSONAL["name"]}},
        **ends,
    )
    name, email = PERSONAL["name"], PERSONAL["email"]
    for sequence, kind, payload in [
        (1, "transcript", {"speaker": "caller", "text": f"Hi, this is {name}."}),
        (2, "transcript", {"speaker": "agent", "text": f"Hello {name}, how can I help?"}),
        (
            3,
            "tool_call",
            {
                "name": "lookup_contact",
                "call_id": "call_1",
                "arguments": {"email": email},
                "ok": True,
                "result": {"name": name, "email": email},
                "error": None,
                "duration_ms": 12.5,
            },
        ),
        (4, "dtmf", {"digit": PERSONAL["digit"]}),
        (5, "latency", {"ms": 420, "item_id": "item_1"}),
    ]:
        f.CallEventFactory(call=call, sequence=sequence, kind=kind, payload=payload)
    outcome = f.OutcomeFactory(
        call=call,
        source=Outcome.Source.MODEL,
        rule="",
        model="gpt-4.1-mini",
        rationale=f"{name} got a new slot.",
        evidence=[{"kind": "transcript", "sequence": 1, "quote": f"this is {name}"}],
    )
    tenant = world.tenant
    Call.objects.for_tenant(tenant).filter(pk=call.pk).update(
        **recordings.store(tenant.public_id, call.public_id, b"\x7f" * 800, b"\xff" * 800)
    )
    call.refresh_from_db()
    f.WebhookDeliveryFactory(
        endpoint=world.webhook_endpoint,
        subject=call.public_id,
        payload={
            "type": "call.completed",
            "timestamp": started_at.isoformat(),
            "data": pipeline.call_data(call, outcome),
        },
        created_at=started_at + timedelta(minutes=2),
    )
    f.UsageEventFactory(
        tenant=tenant,
        reference=call.public_id,
        occurred_at=call.ended_at,
        agent=world.agent.public_id,
        version=world.published_version.public_id,
    )
    return call


def stored_response(world: TenantWorld, call: Call, *, created_at: datetime) -> IdempotencyKey:
    """A POST's stored response that repeats the call (as a retag's would)."""
    return f.IdempotencyKeyFactory(
        tenant=world.tenant,
        path=f"/v1/calls/{call.public_id}/retag",
        response_body={"id": call.public_id, "caller": call.caller, "summary": call.summary},
        created_at=created_at,
        expires_at=created_at + timedelta(hours=24),
    )


def _private_text(call: Call) -> str:
    """Everything stored about what was said on the call, as one string."""
    events = CallEvent.objects.for_tenant(call.tenant).filter(call=call).order_by("sequence")
    outcome = Outcome.objects.for_tenant(call.tenant).get(call=call)
    row = Call.objects.for_tenant(call.tenant).get(pk=call.pk)
    return json.dumps(
        {
            "events": [e.payload for e in events],
            "summary": row.summary,
            "extracted": row.extracted,
            "rationale": outcome.rationale,
            "evidence": outcome.evidence,
        }
    )


def conversation_kept(call: Call) -> None:
    text = _private_text(call)
    assert PERSONAL["name"] in text and PERSONAL["email"] in text


def conversation_removed(call: Call, reason: str) -> None:
    """Nothing said, typed or given on the call is left; the timeline keeps its shape."""
    text = _private_text(call)
    assert PERSONAL["name"] not in text and PERSONAL["email"] not in text
    events = {
        e.sequence: e.payload for e in CallEvent.objects.for_tenant(call.tenant).filter(call=call)
    }
    assert events[1] == {
        "speaker": "caller",
        "text": lifecycle.removed_marker(reason),
        "removed": reason,
    }
    assert (events[3]["name"], events[3]["ok"], events[3]["duration_ms"]) == (
        "lookup_contact",
        True,
        12.5,
    )
    assert (events[3]["arguments"], events[3]["result"], events[3]["error"]) == (None, None, None)
    assert events[4] == {"digit": None, "removed": reason}
    assert events[5] == {"ms": 420, "item_id": "item_1"}  # not personal: kept as it was
    outcome = Outcome.objects.for_tenant(call.tenant).get(call=call)
    assert outcome.evidence == [{"kind": "transcript", "sequence": 1}]
    assert outcome.rationale == ""


def no_trace_of(world: TenantWorld, call: Call, *needles: str) -> None:
    """Neither the call's recording nor its webhook bodies hold any of `needles`."""
    row = Call.objects.for_tenant(world.tenant).get(pk=call.pk)
    assert not row.recording
    assert not default_storage.exists(recordings.wav_path(world.tenant.public_id, call.public_id))
    for delivery in WebhookDelivery.objects.for_tenant(world.tenant).filter(subject=call.public_id):
        body = json.dumps(delivery.payload)
        assert not any(needle in body for needle in needles), body
