"""After the call: the steps calls/tasks.py runs, in order, for every ended call.

redact -> tag the outcome (and summarise) -> hand billing the outcome -> write the recording ->
notify the tenant's webhooks -> finish. Each step re-loads the call, does its work only if it
has not been done (running a step twice changes nothing the second time) and commits its result
in one transaction. State lives on the Call, its Outcome and the PostCallJob row, never in the
queue."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import UsageEvent
from billing.services import usage_set
from calls import recordings
from calls.models import Call, CallEvent, Outcome, PostCallJob
from calls.redaction import NOT_STORED, Policy, redact_data, redact_turns
from calls.tagging import Decision, decide, facts_of
from tenants import webhooks
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def load_call(tenant_id: int, call_id: int) -> Call | None:
    """The call, scoped to its tenant, or None when either is gone or the call has not ended."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return None
    call = (
        Call.objects.for_tenant(tenant)
        .select_related("tenant", "version", "agent", "phone_number")
        .filter(pk=call_id)
        .first()
    )
    if call is None or call.ended_at is None:
        return None
    return call


def policy_of(call: Call) -> Policy:
    return Policy.of(call.version.redaction if call.version else None)


def outcome_of(call: Call) -> Outcome | None:
    return Outcome.objects.for_tenant(call.tenant).filter(call=call).first()


# --- 1. Redaction -----------------------------------------------------------------------------


def redact(call: Call) -> bool:
    """Apply the version's PII policy to the call's transcript and tool data, once."""
    policy = policy_of(call)
    with transaction.atomic():
        locked = Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        if locked.redacted_at is not None:
            return False
        events = list(
            CallEvent.objects.for_tenant(call.tenant)
            .filter(call=call, kind__in=[CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL])
            .order_by("sequence")
        )
        changed = []
        for speaker in ("caller", "agent"):
            turns = [
                e
                for e in events
                if e.kind == CallEvent.Kind.TRANSCRIPT and e.payload.get("speaker") == speaker
            ]
            texts = [str(e.payload.get("text", "")) for e in turns]
            if not policy.keeps_transcripts:
                redacted = [NOT_STORED if text else text for text in texts]
            else:
                redacted = redact_turns(texts, policy)
            for event, before, after in zip(turns, texts, redacted, strict=True):
                if before != after:
                    event.payload = {**event.payload, "text": after}
                    changed.append(event)
        for event in events:
            if event.kind == CallEvent.Kind.TOOL_CALL:
                redacted_payload = {
                    **event.payload,
                    **{
                        key: redact_data(event.payload.get(key), policy)
                        for key in ("arguments", "result", "error")
                        if key in event.payload
                    },
                }
                if redacted_payload != event.payload:
                    event.payload = redacted_payload
                    changed.append(event)
        CallEvent.all_tenants.bulk_update(changed, ["payload"], batch_size=500)
        locked.redacted_at = timezone.now()
        locked.save(update_fields=["redacted_at"])
    call.redacted_at = locked.redacted_at
    return True


# --- 2 and 3. Outcome and summary -------------------------------------------------------------


def apply_decision(call: Call, decision: Decision, *, decided_by: Any = None) -> Outcome:
    """Write a decision as the call's outcome (creating or replacing it) and its summary."""
    fields = {
        "label": decision.label,
        "resolved": decision.resolved,
        "confidence": round(decision.confidence, 3),
        "rationale": decision.rationale,
        "evidence": decision.evidence,
        "source": decision.source,
        "rule": decision.rule,
        "model": decision.model,
        "note": decision.note[:500],
        "decided_by": decided_by,
        "decided_at": timezone.now(),
    }
    outcome, _ = Outcome.objects.for_tenant(call.tenant).update_or_create(
        call=call, defaults=fields, create_defaults={"tenant": call.tenant, **fields}
    )
    if decision.summary or decision.extracted:
        Call.objects.for_tenant(call.tenant).filter(pk=call.pk).update(
            summary=decision.summary, extracted=decision.extracted
        )
        call.summary, call.extracted = decision.summary, decision.extracted
    return outcome


def tag(call: Call) -> Outcome | None:
    """Decide the call's outcome, once. Needs the redacted timeline (the model reads it)."""
    if call.redacted_at is None:
        redact(call)
    if outcome_of(call) is not None:
        return None
    decision = decide(facts_of(call))  # outside the transaction: the model may take seconds
    with transaction.atomic():
        Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        if outcome_of(call) is not None:  # a duplicate run got there first
            return None
        return apply_decision(call, decision)


# --- 4. Billing -------------------------------------------------------------------------------


def bill(call: Call, *, reason: str = "") -> UsageEvent | None:
    """Tell billing whether the call counts as a resolved conversation. Idempotent: the ledger
    changes only when it disagrees with the outcome."""
    outcome = outcome_of(call)
    if outcome is None:
        return None
    return usage_set(
        tenant=call.tenant,
        kind=UsageEvent.Kind.RESOLVED_CONVERSATION,
        reference=call.public_id,
        billable=outcome.resolved,
        at=call.ended_at or timezone.now(),
        reason=reason or f"outcome {outcome.label} ({outcome.source})",
    )


# --- 5. Recording -----------------------------------------------------------------------------


def record(call: Call) -> bool:
    """Turn the raw tracks the worker saved into the call's stereo WAV, once."""
    tenant_id = call.tenant.public_id
    if call.recording:
        recordings.delete_raw(tenant_id, call.public_id)
        return False
    wanted = bool(call.version and call.version.recording_enabled)
    if not wanted or not policy_of(call).keeps_recordings:
        recordings.delete_raw(tenant_id, call.public_id)
        return False
    tracks = recordings.load_raw(tenant_id, call.public_id)
    if tracks is None:  # nothing was saved: the SIP path, or no audio
        return False
    fields = recordings.store(tenant_id, call.public_id, *tracks)
    Call.objects.for_tenant(call.tenant).filter(pk=call.pk).update(**fields)
    recordings.delete_raw(tenant_id, call.public_id)
    return True


# --- 6. Webhooks ------------------------------------------------------------------------------


def call_data(call: Call, outcome: Outcome | None) -> dict[str, Any]:
    """What webhooks say about a call: its record, outcome and summary (never the transcript)."""
    data: dict[str, Any] = {
        "id": call.public_id,
        "agent": call.agent.public_id if call.agent else None,
        "version": call.version.public_id if call.version else None,
        "phone_number": call.phone_number.e164 if call.phone_number else None,
        "caller": call.caller,
        "status": call.status,
        "end_reason": call.end_reason,
        "started_at": call.started_at.isoformat(),
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_seconds": call.duration_seconds,
        "sandbox": call.sandbox,
        "summary": call.summary,
    }
    if outcome is not None:
        data["outcome"] = outcome_data(outcome)
    return data


def outcome_data(outcome: Outcome) -> dict[str, Any]:
    return {
        "label": outcome.label,
        "resolved": outcome.resolved,
        "confidence": outcome.confidence,
        "rationale": outcome.rationale,
        "source": outcome.source,
        "rule": outcome.rule,
        "model": outcome.model,
        "decided_by": outcome.decided_by.email if outcome.decided_by else None,
        "note": outcome.note,
        "decided_at": outcome.decided_at.isoformat(),
    }


def notify(call: Call) -> int:
    """`call.completed`, then `call.outcome_tagged`, to every endpoint that wants them, once."""
    outcome = outcome_of(call)
    data = call_data(call, outcome)
    sent = webhooks.emit(
        call.tenant, "call.completed", subject=call.public_id, key="completed", data=data
    )
    if outcome is not None:
        sent += webhooks.emit(
            call.tenant, "call.outcome_tagged", subject=call.public_id, key="tagged", data=data
        )
    return sent


def finish(call: Call) -> None:
    now = timezone.now()
    Call.objects.for_tenant(call.tenant).filter(pk=call.pk, processed_at=None).update(
        processed_at=now
    )
    PostCallJob.objects.for_tenant(call.tenant).filter(call=call, finished_at=None).update(
        finished_at=now
    )
