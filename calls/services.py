"""Changes to calls. The live call runtime (workers/) calls these off the audio path: once when
a call arrives, when it is answered, every few seconds to flush events and beat its heart, and
once when it ends."""

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from openai import OpenAIError
from redis.exceptions import RedisError

from agents.carriers import openai_sip_client
from agents.models import AgentVersion, PhoneNumber
from agents.selectors import version_for_call
from billing.services import calls_allowed, invoiced_at
from calls import pipeline
from calls.models import Call, CallEvent, Outcome, PostCallJob
from calls.tagging import Decision, decide, facts_of
from tenants import ratelimit, webhooks
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput, TooManyRequests, Unavailable
from tenants.models import Tenant
from tenants.rls import tenant_context
from tenants.services import audit_event_record

logger = logging.getLogger(__name__)

# A live call whose worker has not written its heartbeat for this long is ended by the sweeper;
# a call that rang but never had a media stream is ended after STREAM_WAIT.
HEARTBEAT_TIMEOUT = timedelta(seconds=60)
STREAM_WAIT = timedelta(minutes=2)


@dataclass(frozen=True)
class Admission:
    call: Call
    # Set when the call may go ahead: the published version that answers it.
    version: AgentVersion | None
    created: bool


def call_open(
    *,
    number: PhoneNumber,
    carrier: str,
    carrier_call_id: str,
    caller: str,
    callee: str,
    sandbox: bool = False,
) -> Admission:
    """Record an incoming call and decide whether it may go ahead.

    The version comes from the number's agent and its traffic split. The tenant's concurrent-call
    limit is enforced under a lock on the tenant row, so a burst cannot overshoot it. A call
    already recorded under this carrier id (a retried webhook) is returned as it is.
    """
    existing = Call.all_tenants.filter(carrier=carrier, carrier_call_id=carrier_call_id).first()
    if existing is not None:
        return Admission(existing, existing.version if existing.is_live else None, created=False)
    now = timezone.now()
    try:
        with transaction.atomic():
            tenant = Tenant.objects.select_for_update().get(pk=number.tenant_id)
            version = version_for_call(number, caller)
            fields: dict[str, Any] = {
                "tenant": tenant,
                "phone_number": number,
                "caller": caller,
                "callee": callee,
                "carrier": carrier,
                "carrier_call_id": carrier_call_id,
                "sandbox": sandbox,
                "agent": number.agent,
                "version": version,
                "started_at": now,
            }
            live = (
                Call.objects.for_tenant(tenant)
                .filter(status__in=[Call.Status.RINGING, Call.Status.IN_PROGRESS])
                .count()
            )
            if version is None:
                refused = Call.EndReason.NO_AGENT
            elif tenant.status != Tenant.Status.ACTIVE or live >= tenant.max_concurrent_calls:
                refused = Call.EndReason.OVER_CAPACITY
            elif not calls_allowed(tenant):
                refused = Call.EndReason.USAGE_CAP
            else:
                refused = None
            if refused is not None:
                call = Call.objects.create(
                    **fields,
                    status=Call.Status.FAILED,
                    end_reason=refused,
                    ended_at=now,
                    duration_seconds=0,
                )
                post_call_start(call)
                return Admission(call, None, created=True)
            call = Call.objects.create(**fields, status=Call.Status.RINGING)
            return Admission(call, version, created=True)
    except IntegrityError:
        # The same webhook twice at once: the other request recorded it.
        call = Call.all_tenants.get(carrier=carrier, carrier_call_id=carrier_call_id)
        return Admission(call, call.version if call.is_live else None, created=False)


def outbound_call_admit(*, tenant: Tenant) -> None:
    """Count one outbound call (today: a test call from the console) against the tenant's
    `max_outbound_calls_per_minute`, or refuse it with TooManyRequests.

    The count is one atomic increment in the shared cache per clock minute, so however many
    requests arrive at once, at most the limit are let through in a minute; the next minute
    starts from zero. Call it before placing the call.
    """
    limit = tenant.max_outbound_calls_per_minute
    try:
        wait = ratelimit.take(f"outbound-calls:{tenant.public_id}", limit, window=60)
    except RedisError as error:
        # A paid call is never placed uncounted.
        raise Unavailable(
            "Outbound calls cannot be counted against this account's limit right now; "
            "try again in a minute.",
            code="limits_unavailable",
        ) from error
    if wait is None:
        return
    if limit == 0:
        raise TooManyRequests(
            "This account may not place outbound calls; the platform operator sets this limit.",
            limit=0,
            resets_at=None,
            code="outbound_call_limit_reached",
        )
    resets_at = timezone.now() + timedelta(seconds=wait)
    raise TooManyRequests(
        f"This account may place {limit} outbound call{'' if limit == 1 else 's'} a minute; "
        f"try again in {math.ceil(wait)} second{'' if math.ceil(wait) == 1 else 's'}.",
        limit=limit,
        resets_at=resets_at,
        code="outbound_call_limit_reached",
    )


def call_answered(call: Call, *, sandbox: bool) -> bool:
    """The media stream (or sideband) is up. False if the call already ended."""
    now = timezone.now()
    updated = (
        Call.objects.for_tenant(call.tenant)
        .filter(pk=call.pk, status=Call.Status.RINGING)
        .update(status=Call.Status.IN_PROGRESS, answered_at=now, heartbeat_at=now, sandbox=sandbox)
    )
    return bool(updated)


@dataclass(frozen=True)
class PendingEvent:
    at: float  # unix time
    kind: str
    payload: dict[str, Any]


def call_events_append(call: Call, events: list[PendingEvent]) -> None:
    """Write a batch of events in one query, numbered after the call's last one, and beat the
    call's heart. The call row is locked, so batches and carrier callbacks never collide."""
    with transaction.atomic():
        locked = Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        if events:
            last = (
                CallEvent.objects.for_tenant(call.tenant)
                .filter(call=call)
                .aggregate(n=Max("sequence"))["n"]
            )
            start = locked.started_at.timestamp()
            CallEvent.all_tenants.bulk_create(
                CallEvent(
                    tenant_id=call.tenant_id,
                    call=call,
                    sequence=(last or 0) + index + 1,
                    offset_ms=max(0, round((event.at - start) * 1000)),
                    kind=event.kind,
                    payload=event.payload,
                )
                for index, event in enumerate(events)
            )
        if locked.ended_at is None:
            Call.objects.for_tenant(call.tenant).filter(pk=call.pk).update(
                heartbeat_at=timezone.now()
            )


def call_event_add(call: Call, kind: str, payload: dict[str, Any]) -> None:
    """One event from outside the call's worker (a carrier callback)."""
    call_events_append(call, [PendingEvent(time.time(), kind, payload)])


def call_transfer_update(call: Call, *, status: str, target: str = "") -> None:
    fields: dict[str, Any] = {"transfer_status": status}
    if target:
        fields["transfer_target"] = target
    Call.objects.for_tenant(call.tenant).filter(pk=call.pk).update(**fields)


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    merged = dict(total)
    for key, value in usage.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = merged.get(key, 0) + value
        elif isinstance(value, dict):
            merged[key] = _add_usage(merged.get(key, {}), value)
    return merged


def post_call_start(call: Call) -> None:
    """Write the post-call job (the outbox row) in the transaction that ends the call, and queue
    the pipeline once that commits."""
    from calls.tasks import post_call_queue

    job = PostCallJob.objects.create(tenant=call.tenant, call=call)
    post_call_queue(job)


def call_finalize(
    call: Call, *, status: str, end_reason: str, usage: dict[str, Any] | None = None
) -> bool:
    """End the call. Whatever path ends it (hang-up, transfer, error, lost worker), only the first
    call changes anything: it returns True, every later one False."""
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Call.objects.for_tenant(call.tenant)
            .select_for_update()
            .filter(pk=call.pk, ended_at=None)
            .first()
        )
        if locked is None:
            return False
        locked.status = status
        locked.end_reason = end_reason
        locked.ended_at = now
        begun = locked.answered_at or locked.started_at
        locked.duration_seconds = max(0, round((now - begun).total_seconds()))
        if usage:
            locked.usage = _add_usage(locked.usage, usage)
        locked.save(update_fields=["status", "end_reason", "ended_at", "duration_seconds", "usage"])
        post_call_start(locked)
    logger.info(
        "call ended", extra={"call_id": call.public_id, "end_reason": end_reason, "status": status}
    )
    return True


def calls_sweep() -> int:
    """End calls nobody is running any more: a worker that died mid-call, or a call that rang
    and never got a media stream. Returns how many were ended."""
    now = timezone.now()
    ended = 0
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            live = Call.objects.for_tenant(tenant).filter(
                status__in=[Call.Status.RINGING, Call.Status.IN_PROGRESS]
            )
            lost = live.filter(
                status=Call.Status.IN_PROGRESS, heartbeat_at__lt=now - HEARTBEAT_TIMEOUT
            )
            unanswered = live.filter(status=Call.Status.RINGING, started_at__lt=now - STREAM_WAIT)
            hang_up = []
            for call in lost.select_related("phone_number__carrier_account"):
                if call_finalize(
                    call, status=Call.Status.FAILED, end_reason=Call.EndReason.WORKER_LOST
                ):
                    ended += 1
                    hang_up.append(call)
            for call in unanswered:
                ended += call_finalize(
                    call,
                    status=Call.Status.FAILED,
                    end_reason=Call.EndReason.STREAM_NEVER_CONNECTED,
                )
        for call in hang_up:  # outside the transaction: a request to OpenAI
            _hang_up_unsupervised(call)
    return ended


def _hang_up_unsupervised(call: Call) -> None:
    """A lost Media Streams worker took the call's audio with it, but a SIP call carries on at
    OpenAI without its sideband (no tools, no limits): hang it up."""
    if call.carrier != Call.Carrier.OPENAI_SIP or call.phone_number is None:
        return
    try:
        openai_sip_client(call.phone_number.carrier_account).realtime.calls.hangup(
            call.carrier_call_id
        )
    except OpenAIError as error:  # most likely the call already ended
        logger.info(
            "could not hang up a lost SIP call",
            extra={"call_id": call.public_id, "error": str(error)},
        )


def call_status_from_carrier(call: Call, carrier_status: str, duration: int | None = None) -> None:
    """Apply a carrier status callback (Twilio's CallStatus) to the call."""
    if carrier_status == "in-progress":
        Call.objects.for_tenant(call.tenant).filter(pk=call.pk, answered_at=None).update(
            answered_at=timezone.now()
        )
        return
    ended = {
        "completed": Call.Status.COMPLETED,
        "busy": Call.Status.FAILED,
        "failed": Call.Status.FAILED,
        "no-answer": Call.Status.FAILED,
        "canceled": Call.Status.FAILED,
    }
    if carrier_status in ended:
        status = ended[carrier_status]
        reason = (
            Call.EndReason.CALLER_HANGUP
            if status == Call.Status.COMPLETED
            else Call.EndReason.CARRIER_ERROR
        )
        call_finalize(call, status=status, end_reason=reason)


# --- Outcomes ---------------------------------------------------------------------------------


def _outcome_changed(call: Call, before: Outcome | None, after: Outcome, actor: Actor) -> None:
    """Audit a changed outcome, bring the bill in line (inside the dispute window) and tell the
    tenant's webhooks."""
    old = pipeline.outcome_data(before) if before else None
    new = pipeline.outcome_data(after)
    audit_event_record(
        actor=actor,
        action="call.outcome_changed",
        target=call,
        # Not the rationale: it may retell the conversation, and the audit log is append-only,
        # so nothing in it could be removed with the call's data (calls/lifecycle.py).
        changes={
            key: [old.get(key) if old else None, new[key]]
            for key in ("label", "resolved", "source")
            if (old or {}).get(key) != new[key]
        },
    )
    window = timedelta(days=call.tenant.dispute_window_days)
    # The window runs from the invoice that charged the call, or from its end until invoiced.
    opened = call.ended_at and (invoiced_at(call.tenant, call.ended_at) or call.ended_at)
    if opened and timezone.now() - opened <= window:
        pipeline.bill(call, reason=f"outcome changed to {after.label} by {actor.label}")
    else:
        logger.info(
            "outcome changed after the dispute window; the bill stands",
            extra={"call_id": call.public_id},
        )
    webhooks.emit(
        call.tenant,
        "call.outcome_changed",
        subject=call.public_id,
        key=f"changed:{after.decided_at.isoformat()}",
        data={**pipeline.call_data(call, after), "previous_outcome": old},
    )


_REMOVED = (
    "What was said on this call was removed (retention or erasure), so it cannot be decided "
    "again; set the outcome by hand instead."
)


def outcome_retag(*, call: Call, actor: Actor) -> Outcome:
    """Decide the outcome again (rules, model, heuristic) with the version's current taxonomy."""
    actor.require("calls:write")
    if call.ended_at is None:
        raise Conflict("The call has not ended yet.")
    if pipeline.conversation_removed(call):
        raise Conflict(_REMOVED, code="conversation_removed")
    if call.redacted_at is None:
        pipeline.redact(call)
    decision = decide(facts_of(call))
    with transaction.atomic():
        Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        call.refresh_from_db()
        if pipeline.conversation_removed(call):  # removed while the decision was being made
            raise Conflict(_REMOVED, code="conversation_removed")
        before = pipeline.outcome_of(call)
        after = pipeline.apply_decision(call, decision)
        _outcome_changed(call, before, after, actor)
    return after


def outcome_set(*, call: Call, actor: Actor, label: str, rationale: str = "") -> Outcome:
    """A person decides the outcome (provenance `human`)."""
    actor.require("calls:write")
    if call.ended_at is None:
        raise Conflict("The call has not ended yet.")
    facts = facts_of(call)
    if label not in facts.labels:
        raise InvalidInput.field(
            "label", f"Not an outcome of this agent version: use one of {', '.join(facts.labels)}."
        )
    decision = Decision(
        label=label,
        resolved=bool(facts.labels[label]["resolved"]),
        confidence=1.0,
        rationale=rationale or f"Set by {actor.label}.",
        source=Outcome.Source.HUMAN,
        note=f"set by {actor.label}",
    )
    with transaction.atomic():
        Call.objects.for_tenant(call.tenant).select_for_update().get(pk=call.pk)
        call.refresh_from_db()  # as the lifecycle may have left it (calls/lifecycle.py)
        before = pipeline.outcome_of(call)
        if before is not None:
            decision.evidence = before.evidence
            decision.summary, decision.extracted = call.summary, call.extracted
        after = pipeline.apply_decision(call, decision, decided_by=actor.user)
        _outcome_changed(call, before, after, actor)
    return after
