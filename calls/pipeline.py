"""After the call: what calls/tasks.py runs for every ended call, in order.

redact -> tag the outcome (and summarise) -> hand billing the outcome -> write the recording ->
notify the tenant's webhooks -> finish. `process` does all of it for a batch of calls, skipping
calls already processed, so running it twice changes nothing the second time; the single steps
serve re-tagging and human overrides (calls/services.py). State lives on the Call, its Outcome
and the PostCallJob row, never in the queue."""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Meter, UsageEvent
from billing.services import Usage, usage_set, usage_set_many
from calls import recordings
from calls.models import Call, CallEvent, Outcome, PostCallJob
from calls.redaction import NOT_STORED, Policy, redact_data, redact_turns
from calls.tagging import Decision, decide, facts_of
from tenants import webhooks
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def claim_timeout() -> timedelta:
    """A run that took a job and has not finished it this long after is presumed dead, as the
    relay presumes a task queued this long ago lost (POST_CALL_REQUEUE_SECONDS, longer than the
    task's time limit, after which Celery has killed a run that was still going)."""
    return timedelta(seconds=settings.POST_CALL_REQUEUE_SECONDS)


def policy_of(call: Call) -> Policy:
    return Policy.of(call.version.redaction if call.version else None)


def outcome_of(call: Call) -> Outcome | None:
    return Outcome.objects.for_tenant(call.tenant).filter(call=call).first()


# --- 1. Redaction -----------------------------------------------------------------------------


def private_events(call: Call) -> list[CallEvent]:
    """The events redaction and tagging read: transcript turns and tool calls, in order."""
    return list(
        CallEvent.objects.for_tenant(call.tenant)
        .filter(call=call, kind__in=[CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL])
        .order_by("sequence")
    )


def redact_events(events: list[CallEvent], policy: Policy) -> list[CallEvent]:
    """Redact the events in place; returns those that changed."""
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
    return changed


def redact(call: Call) -> bool:
    """Apply the version's PII policy to the call's transcript and tool data, once."""
    with transaction.atomic():
        locked = Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        if locked.redacted_at is not None:
            return False
        changed = redact_events(private_events(call), policy_of(call))
        CallEvent.all_tenants.bulk_update(changed, ["payload"], batch_size=500)
        locked.redacted_at = timezone.now()
        locked.save(update_fields=["redacted_at"])
    call.redacted_at = locked.redacted_at
    return True


# --- 2 and 3. Outcome and summary -------------------------------------------------------------


def outcome_fields(decision: Decision) -> dict[str, Any]:
    return {
        "label": decision.label,
        "resolved": decision.resolved,
        "confidence": round(decision.confidence, 3),
        "rationale": decision.rationale,
        "evidence": decision.evidence,
        "source": decision.source,
        "rule": decision.rule,
        "model": decision.model,
        "note": decision.note[:500],
        "decided_at": timezone.now(),
    }


def apply_decision(call: Call, decision: Decision, *, decided_by: Any = None) -> Outcome:
    """Write a decision as the call's outcome (creating or replacing it) and its summary."""
    fields = {**outcome_fields(decision), "decided_by": decided_by}
    if conversation_removed(call):
        # What was said is gone (retention or erasure): nothing decided may bring it back.
        fields["evidence"] = [
            {k: v for k, v in item.items() if k != "quote"} if isinstance(item, dict) else item
            for item in fields["evidence"]
        ]
        if decision.source == Outcome.Source.MODEL:
            fields["rationale"] = ""
    outcome, _ = Outcome.objects.for_tenant(call.tenant).update_or_create(
        call=call, defaults=fields, create_defaults={"tenant": call.tenant, **fields}
    )
    if (decision.summary or decision.extracted) and not conversation_removed(call):
        call.summary, call.extracted = decision.summary, decision.extracted
        Call.objects.for_tenant(call.tenant).filter(pk=call.pk).update(
            summary=decision.summary, extracted=decision.extracted
        )
    return outcome


def conversation_removed(call: Call) -> bool:
    """Whether the call's transcript, tool data and summary were removed (calls/lifecycle.py)."""
    return call.transcript_expired_at is not None or call.erased_at is not None


# --- 4. Billing -------------------------------------------------------------------------------


def bill(call: Call, *, reason: str = "") -> UsageEvent | None:
    """Tell billing whether the call counts as a resolved conversation. Idempotent: the ledger
    changes only when it disagrees with the outcome."""
    outcome = outcome_of(call)
    if outcome is None:
        return None
    return usage_set(
        tenant=call.tenant,
        meter=Meter.RESOLVED_CONVERSATION,
        reference=call.public_id,
        usage=usage_of(call, outcome, reason=reason),
    )


def usage_of(call: Call, outcome: Outcome, *, reason: str = "") -> Usage:
    return Usage(
        billable=outcome.resolved,
        at=call.ended_at or timezone.now(),
        reason=reason or f"outcome {outcome.label} ({outcome.source})",
        agent=call.agent.public_id if call.agent else "",
        version=call.version.public_id if call.version else "",
    )


# --- 5. Recording -----------------------------------------------------------------------------


def record(call: Call) -> bool:
    """Turn the raw tracks the worker saved into the call's stereo WAV, once."""
    if not (call.version and call.version.recording_enabled):
        return False  # the worker kept no audio
    tenant_id = call.tenant.public_id
    if call.recording or not policy_of(call).keeps_recordings:
        recordings.delete_raw(tenant_id, call.public_id)  # done before, or never to be kept
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


# --- All of it --------------------------------------------------------------------------------


def claim(tenant: Tenant, call_ids: list[int], limit: int, run: str) -> list[int]:
    """The calls run `run` should process: those asked for, unless another run has taken their
    job, and other waiting jobs of the tenant up to `limit`, taken for this run."""
    now = timezone.now()
    presumed_dead = now - claim_timeout()
    with transaction.atomic():
        free = (
            PostCallJob.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True)
            .filter(finished_at=None)
            .filter(Q(claimed_at=None) | Q(claimed_at__lt=presumed_dead) | Q(claimed_by=run))
        )
        asked = list(free.filter(call_id__in=call_ids).values_list("pk", "call_id"))
        room = max(0, limit - len(call_ids))
        extra = list(
            free.exclude(call_id__in=call_ids).order_by("pk").values_list("pk", "call_id")[:room]
        )
        taken = asked + extra
        PostCallJob.objects.for_tenant(tenant).filter(pk__in=[pk for pk, _ in taken]).update(
            claimed_by=run, claimed_at=now
        )
    mine = {call_id for _, call_id in asked}
    elsewhere = set(
        PostCallJob.objects.for_tenant(tenant)
        .filter(call_id__in=call_ids, finished_at=None)
        .exclude(call_id__in=mine)
        .values_list("call_id", flat=True)
    )
    return [i for i in call_ids if i not in elsewhere] + [call_id for _, call_id in extra]


def process(tenant: Tenant, call_ids: list[int]) -> int:
    """Every step for a batch of a tenant's ended calls, in order: redact, tag, bill, record,
    notify, finish. The database work for the whole batch is one transaction of a dozen
    queries, whatever the batch's size or the transcripts' length; the model, when configured
    and needed, is asked before it, so no row stays locked while it thinks. Calls already
    processed are skipped. Returns how many calls this run processed."""
    calls = list(
        Call.objects.for_tenant(tenant)
        .select_related("tenant", "version", "agent", "phone_number")
        .filter(pk__in=call_ids, processed_at=None, ended_at__isnull=False)
        .order_by("pk")
    )
    if not calls:
        return 0
    events: dict[int, list[CallEvent]] = {call.pk: [] for call in calls}
    for event in (
        CallEvent.objects.for_tenant(tenant)
        .filter(call__in=calls, kind__in=[CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL])
        .order_by("call_id", "sequence")
    ):
        events[event.call_id].append(event)
    decided = set(
        Outcome.objects.for_tenant(tenant).filter(call__in=calls).values_list("call_id", flat=True)
    )
    changed: dict[int, list[CallEvent]] = {}
    decisions: dict[int, Decision] = {}
    for call in calls:
        if call.redacted_at is None:
            changed[call.pk] = redact_events(events[call.pk], policy_of(call))
        if call.pk not in decided:
            decisions[call.pk] = decide(facts_of(call, events[call.pk]))
        record(call)  # files, outside the transaction
    with transaction.atomic():
        # Another run may have processed some of these meanwhile: the lock settles who does.
        mine = set(
            Call.objects.for_tenant(tenant)
            .select_for_update()
            .filter(pk__in=[call.pk for call in calls], processed_at=None)
            .values_list("pk", flat=True)
        )
        calls = [call for call in calls if call.pk in mine]
        if not calls:
            return 0
        now = timezone.now()
        outcomes = {
            o.call_id: o
            for o in Outcome.objects.for_tenant(tenant)
            .filter(call__in=calls)
            .select_related("decided_by")
        }
        new_outcomes = []
        for call in calls:
            if call.redacted_at is None:
                call.redacted_at = now
            decision = decisions.get(call.pk)
            if call.pk not in outcomes and decision is not None:
                outcome = Outcome(tenant=tenant, call=call, **outcome_fields(decision))
                outcomes[call.pk] = outcome
                new_outcomes.append(outcome)
                if decision.summary or decision.extracted:
                    call.summary, call.extracted = decision.summary, decision.extracted
            call.processed_at = now
        CallEvent.all_tenants.bulk_update(
            [e for call in calls for e in changed.get(call.pk, [])], ["payload"], batch_size=500
        )
        Outcome.all_tenants.bulk_create(new_outcomes)
        Call.all_tenants.bulk_update(
            calls, ["redacted_at", "summary", "extracted", "processed_at"], batch_size=500
        )
        usage_set_many(
            tenant=tenant,
            meter=Meter.RESOLVED_CONVERSATION,
            wanted={
                call.public_id: usage_of(call, outcomes[call.pk])
                for call in calls
                if call.pk in outcomes
            },
        )
        webhooks.emit_many(
            tenant,
            [event for call in calls for event in completed_events(call, outcomes.get(call.pk))],
        )
        PostCallJob.objects.for_tenant(tenant).filter(call__in=calls, finished_at=None).update(
            finished_at=now
        )
    return len(calls)


def completed_events(call: Call, outcome: Outcome | None) -> list[webhooks.Event]:
    data = call_data(call, outcome)
    events: list[webhooks.Event] = [("call.completed", call.public_id, "completed", data)]
    if outcome is not None:
        events.append(("call.outcome_tagged", call.public_id, "tagged", data))
    return events
