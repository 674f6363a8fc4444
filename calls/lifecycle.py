"""The data lifecycle of calls: retention (a daily task removes what is older than the tenant's
periods) and erasure (everything about one phone number's calls, on request).

A call's personal data, and where it is kept:

- the call row: the caller's number (the callee's, when the call went out), the summary and the
  extracted fields (`calls.Call`);
- the timeline: transcript text, tool-call arguments, results and errors, keypad digits
  (`calls.CallEvent`);
- the outcome: quotes in its evidence, and a rationale written from the conversation by the
  model or by a member (`calls.Outcome`);
- the recording: the WAV in the default storage (and the raw tracks while it is written);
- webhook deliveries about the call, whose bodies repeat its number, summary and outcome
  (`tenants.WebhookDelivery`);
- stored responses of idempotent POSTs, which repeat whatever they answered
  (`tenants.IdempotencyKey`).

What stays: the call row (status, times, durations, end reason, agent and version, token usage),
the outcome's label, resolution and source, and billing: the usage ledger names calls by id with
their agent and version and a reason, never a caller's data, and invoices hold totals. The audit
log names calls by direction and time (`Call.audit_label`) and keeps no conversation text; logs
carry call ids only.

Both only touch calls that have ended and whose after-call work has finished, so the post-call
pipeline (which reads a call's events before it locks the call) never writes back what was
removed.
"""

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from agents.models import PhoneNumber
from calls import recordings
from calls.models import (
    Call,
    CallEvent,
    Erasure,
    Outcome,
    PostCallJob,
    RetentionCheckpoint,
)
from calls.redaction import NOT_STORED
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import IdempotencyKey, Tenant, WebhookDelivery
from tenants.rls import tenant_context
from tenants.services import audit_event_record

RETENTION = "retention"
ERASURE = "erasure"
# What an erased call keeps instead of the number: the same for every number, so nothing about
# the number can be recovered from it.
ERASED_NUMBER = "[erased]"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Calls (or deliveries) changed in one transaction.
BATCH = 200
# A run of the retention task stops after this many batches, or this long, and queues the rest,
# well inside the task's time limit (deleting files from a bucket takes a round trip each).
MAX_BATCHES = 1000
TIME_BUDGET_SECONDS = 240.0
# A delivery is retried for about 32 hours (tenants.webhooks.RETRY_DELAYS) and keeps its body
# until it is settled; the retention task looks this far behind its checkpoint for such ones.
RETRY_MARGIN = timedelta(days=3)

PRIVATE_KINDS = (CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL, CallEvent.Kind.DTMF)
TOOL_DATA = ("arguments", "result", "error")


def removed_marker(reason: str) -> str:
    """What replaces a transcript turn's text once it is removed."""
    return f"[removed: {reason}]"


@dataclass
class Removed:
    """How much a retention run or an erasure removed, by kind."""

    calls: int = 0  # erasure: calls of the number (its number replaced on each)
    recordings: int = 0
    transcript_turns: int = 0
    tool_calls: int = 0
    keypad_entries: int = 0
    summaries: int = 0
    outcomes: int = 0
    webhook_bodies: int = 0
    stored_responses: int = 0

    def add(self, other: "Removed") -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def anything(self) -> bool:
        return any(self.as_dict().values())

    def audit_changes(self) -> dict[str, list[Any]]:
        return {name: [None, count] for name, count in self.as_dict().items() if count}


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def settled_calls(tenant: Tenant) -> QuerySet[Call]:
    """The tenant's calls that have ended and whose after-call work has finished (or never
    existed: calls from before the pipeline)."""
    unfinished = PostCallJob.objects.for_tenant(tenant).filter(finished_at=None).values("call_id")
    return Call.objects.for_tenant(tenant).filter(ended_at__isnull=False).exclude(pk__in=unfinished)


# --- Removing a conversation ------------------------------------------------------------------


def _strip_event(event: CallEvent, reason: str) -> str | None:
    """Remove what the caller said or gave from one event, in place; returns the kind of thing
    removed (a field of Removed), or None when the event held nothing (any more)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    if "removed" in payload:
        return None
    if event.kind == CallEvent.Kind.TRANSCRIPT:
        if not payload.get("text") or payload.get("text") == NOT_STORED:
            return None
        event.payload = {**payload, "text": removed_marker(reason), "removed": reason}
        return "transcript_turns"
    if event.kind == CallEvent.Kind.TOOL_CALL:
        if all(payload.get(key) is None for key in TOOL_DATA):
            return None
        cleared = {key: None for key in TOOL_DATA if key in payload}
        event.payload = {**payload, **cleared, "removed": reason}
        return "tool_calls"
    if event.kind == CallEvent.Kind.DTMF:
        if not payload.get("digit"):
            return None
        event.payload = {**payload, "digit": None, "removed": reason}
        return "keypad_entries"
    return None


def strip_decision_evidence(evidence: list[Any]) -> list[Any]:
    """Evidence without the quotes of what was said (kinds and turn numbers stay)."""
    return [
        {key: value for key, value in item.items() if key != "quote"}
        if isinstance(item, dict)
        else item
        for item in evidence
    ]


def _strip_outcome(outcome: Outcome) -> bool:
    """Quotes go; a rationale written from the conversation (by the model or a member) goes;
    a rule's rationale, which says only which rule applied, stays."""
    evidence = strip_decision_evidence(outcome.evidence or [])
    rationale = outcome.rationale if outcome.source == Outcome.Source.RULE else ""
    if evidence == (outcome.evidence or []) and rationale == outcome.rationale:
        return False
    outcome.evidence, outcome.rationale = evidence, rationale
    return True


def _strip_conversations(tenant: Tenant, call_ids: list[int], reason: str) -> Removed:
    """Remove what was said and given on these calls: transcript text, tool data, keypad
    digits, summaries and extracted fields, the outcome's quotes and written rationale."""
    removed = Removed()
    events = list(
        CallEvent.objects.for_tenant(tenant).filter(call_id__in=call_ids, kind__in=PRIVATE_KINDS)
    )
    changed = []
    for event in events:
        kind = _strip_event(event, reason)
        if kind is not None:
            setattr(removed, kind, getattr(removed, kind) + 1)
            changed.append(event)
    CallEvent.all_tenants.bulk_update(changed, ["payload"], batch_size=500)

    removed.summaries = (
        Call.objects.for_tenant(tenant)
        .filter(pk__in=call_ids)
        .filter(~Q(summary="") | ~Q(extracted={}))
        .update(summary="", extracted={})
    )

    outcomes = [
        o
        for o in Outcome.objects.for_tenant(tenant).filter(call_id__in=call_ids)
        if _strip_outcome(o)
    ]
    Outcome.all_tenants.bulk_update(outcomes, ["evidence", "rationale"], batch_size=500)
    removed.outcomes = len(outcomes)
    return removed


def _stub(delivery: WebhookDelivery, reason: str) -> dict[str, Any]:
    """What a delivery's body becomes: its type and time, and the call's id."""
    payload = delivery.payload if isinstance(delivery.payload, dict) else {}
    return {
        "type": payload.get("type", delivery.event_type),
        "timestamp": payload.get("timestamp"),
        "data": {"id": delivery.subject},
        "removed": reason,
    }


# --- Retention --------------------------------------------------------------------------------


@dataclass
class RetentionRun:
    removed: Removed
    # The run stopped at its budget with work left; the task queues another at once.
    more: bool


Batch = Callable[[], tuple[Removed, bool]]


def _recordings_batch(tenant: Tenant, cutoff: datetime, now: datetime) -> tuple[Removed, bool]:
    with tenant_context(tenant):
        due = list(
            settled_calls(tenant)
            .select_for_update(skip_locked=True)
            .filter(recording_expired_at=None, started_at__lt=cutoff)
            .order_by("started_at")
            .values_list("pk", "recording")[:BATCH]
        )
        Call.objects.for_tenant(tenant).filter(pk__in=[pk for pk, _ in due]).update(
            recording="", recording_duration_ms=None, recording_sha256="", recording_expired_at=now
        )
        # After the rows: if the storage fails, the batch rolls back and the task retries it.
        names = [name for _, name in due if name]
        for name in names:
            default_storage.delete(name)
    return Removed(recordings=len(names)), len(due) < BATCH


def _transcripts_batch(tenant: Tenant, cutoff: datetime, now: datetime) -> tuple[Removed, bool]:
    with tenant_context(tenant):
        due = list(
            settled_calls(tenant)
            .select_for_update(skip_locked=True)
            .filter(transcript_expired_at=None, started_at__lt=cutoff)
            .order_by("started_at")
            .values_list("pk", flat=True)[:BATCH]
        )
        removed = _strip_conversations(tenant, due, RETENTION)
        Call.objects.for_tenant(tenant).filter(pk__in=due).update(transcript_expired_at=now)
    return removed, len(due) < BATCH


def _webhook_bodies_batch(tenant: Tenant, cutoff: datetime) -> tuple[Removed, bool]:
    with tenant_context(tenant):
        checkpoint, _ = RetentionCheckpoint.objects.for_tenant(tenant).get_or_create(
            defaults={"tenant": tenant}
        )
        due = (
            WebhookDelivery.objects.for_tenant(tenant)
            .filter(created_at__lt=cutoff)
            .exclude(status=WebhookDelivery.Status.PENDING)
            .exclude(payload__has_key="removed")
        )
        if checkpoint.webhook_bodies_through is not None:
            due = due.filter(created_at__gte=checkpoint.webhook_bodies_through - RETRY_MARGIN)
        batch = list(due.select_for_update(skip_locked=True).order_by("created_at")[:BATCH])
        for delivery in batch:
            delivery.payload = _stub(delivery, RETENTION)
        WebhookDelivery.all_tenants.bulk_update(batch, ["payload"])
        done = len(batch) < BATCH
        if done:
            through = checkpoint.webhook_bodies_through
            checkpoint.webhook_bodies_through = max(through, cutoff) if through else cutoff
            checkpoint.save(update_fields=["webhook_bodies_through"])
    return Removed(webhook_bodies=len(batch)), done


def _stored_responses_batch(tenant: Tenant, cutoff: datetime) -> tuple[Removed, bool]:
    # Stored responses expire within a day or so (IDEMPOTENCY_KEY_TTL_HOURS) and are purged
    # hourly, so there are few: one statement does.
    with tenant_context(tenant):
        count = (
            IdempotencyKey.objects.for_tenant(tenant)
            .filter(created_at__lt=cutoff, response_body__isnull=False)
            .update(response_body=None)
        )
    return Removed(stored_responses=count), True


def retention_apply(
    *,
    tenant: Tenant,
    actor: Actor,
    now: datetime | None = None,
) -> RetentionRun:
    """Remove what is older than the tenant's retention periods: recordings (the files too)
    after `recording_retention_days`; transcript text, tool data, keypad digits, summaries,
    extracted fields and the outcome's quotes after `transcript_retention_days`; the bodies of
    webhook deliveries and stored API responses after `webhook_body_retention_days`. Age counts
    from the call's start (a delivery's or response's creation). Call rows, outcomes, durations
    and billing stay.

    Each batch is one transaction in the tenant's context, oldest first, and marks what it has
    done, so running again changes nothing and a run cut short loses nothing. A run stops after
    MAX_BATCHES batches or TIME_BUDGET_SECONDS with `more` set. A run that removed something
    writes one audit event, `retention.applied`, with the counts."""
    actor.require("privacy:write")
    now = now or timezone.now()
    days = timedelta(days=1)
    steps: list[Batch] = [
        lambda: _recordings_batch(tenant, now - tenant.recording_retention_days * days, now),
        lambda: _transcripts_batch(tenant, now - tenant.transcript_retention_days * days, now),
        lambda: _webhook_bodies_batch(tenant, now - tenant.webhook_body_retention_days * days),
        lambda: _stored_responses_batch(tenant, now - tenant.webhook_body_retention_days * days),
    ]
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    removed, batches, more = Removed(), 0, False
    for step in steps:
        done = False
        while not done:
            if batches >= MAX_BATCHES or time.monotonic() >= deadline:
                more = True
                break
            got, done = step()
            removed.add(got)
            if got.anything or not done:  # a batch that found nothing costs (almost) nothing
                batches += 1
        if more:
            break
    with tenant_context(tenant):
        RetentionCheckpoint.objects.for_tenant(tenant).update_or_create(
            defaults={"last_run_at": now}, create_defaults={"tenant": tenant, "last_run_at": now}
        )
        if removed.anything:
            audit_event_record(
                actor=actor,
                action="retention.applied",
                target=tenant,
                changes=removed.audit_changes(),
            )
    return RetentionRun(removed=removed, more=more)


# --- Erasure ----------------------------------------------------------------------------------


def number_hash(tenant: Tenant, number: str) -> str:
    """A keyed hash of a number (keyed by SECRET_KEY, and per tenant), to recognise it again
    without keeping it."""
    value = f"{tenant.public_id}:{number}"
    return salted_hmac("calls.erasure.number", value, algorithm="sha256").hexdigest()


def clean_number(phone_number: str) -> str:
    number = (phone_number or "").strip()
    if not E164.match(number):
        raise InvalidInput.field(
            "phone_number",
            "Give the number in E.164 form: + and the country code, e.g. +14155550123.",
        )
    return number


def _strip_deliveries(tenant: Tenant, subjects: list[str]) -> int:
    """Bodies of the deliveries about these calls; one still waiting to be sent is not sent."""
    count = 0
    for chunk in _chunks(subjects):
        rows = list(
            WebhookDelivery.objects.for_tenant(tenant)
            .select_for_update()
            .filter(subject__in=chunk)
            .exclude(payload__has_key="removed")
        )
        for delivery in rows:
            delivery.payload = _stub(delivery, ERASURE)
            if delivery.status == WebhookDelivery.Status.PENDING:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = None
                delivery.last_error = "not sent: the call's personal data was erased"
        WebhookDelivery.all_tenants.bulk_update(
            rows, ["payload", "status", "next_attempt_at", "last_error"]
        )
        count += len(rows)
    return count


def _strip_stored_responses(tenant: Tenant, needles: list[str]) -> int:
    """Stored API responses that mention the number or one of its calls."""
    stored = IdempotencyKey.objects.for_tenant(tenant).filter(response_body__isnull=False)
    hits = [
        pk
        for pk, body in stored.values_list("pk", "response_body")
        if any(needle in json.dumps(body) for needle in needles)
    ]
    IdempotencyKey.objects.for_tenant(tenant).filter(pk__in=hits).update(response_body=None)
    return len(hits)


def erasure_create(*, tenant: Tenant, actor: Actor, phone_number: str) -> Erasure:
    """Erase the personal data of every call of the tenant where `phone_number` was the caller
    or the callee: transcript text, tool data, keypad digits, summaries, extracted fields, the
    outcome's quotes and written rationale, the recording (its file too), the bodies of webhook
    deliveries and stored API responses about those calls, and the number itself on each call
    (replaced by `[erased]`). Call rows, outcomes' labels, durations and billing stay.

    All of it happens in one transaction, which also records the `Erasure` (with the counts and
    a keyed hash of the number, never the number) and its audit event. Refused with 409 while a
    call of the number is live or its after-call work has not finished, and for the tenant's
    own numbers. Another tenant's calls from the same number are not touched."""
    actor.require("privacy:write")
    number = clean_number(phone_number)
    if PhoneNumber.objects.for_tenant(tenant).filter(e164=number).exists():
        raise InvalidInput.field(
            "phone_number",
            "This is one of your own numbers; erasure is for the numbers of callers.",
            code="own_number",
        )
    now = timezone.now()
    removed = Removed()
    with transaction.atomic():
        calls = list(
            Call.objects.for_tenant(tenant)
            .select_for_update()
            .filter(Q(caller=number) | Q(callee=number))
            .order_by("pk")
        )
        ids = [call.pk for call in calls]
        settled = set(settled_calls(tenant).filter(pk__in=ids).values_list("pk", flat=True))
        if len(settled) != len(ids):
            raise Conflict(
                "A call with this number is in progress or its after-call work has not "
                "finished yet; try again in a minute.",
                code="call_in_progress",
            )
        for chunk in _chunks(ids):
            removed.add(_strip_conversations(tenant, chunk, ERASURE))
        scoped = Call.objects.for_tenant(tenant).filter(pk__in=ids)
        scoped.filter(caller=number).update(caller=ERASED_NUMBER)
        scoped.filter(callee=number).update(callee=ERASED_NUMBER)
        scoped.update(erased_at=now, recording="", recording_duration_ms=None, recording_sha256="")
        removed.calls = len(calls)
        removed.recordings = sum(1 for call in calls if call.recording)
        public_ids = [call.public_id for call in calls]
        removed.webhook_bodies = _strip_deliveries(tenant, public_ids)
        removed.stored_responses = _strip_stored_responses(tenant, [number, *public_ids])
        erasure = Erasure.objects.create(
            tenant=tenant,
            number_hash=number_hash(tenant, number),
            requested_by_type=actor.kind,
            requested_by_id=actor.public_id,
            requested_by_label=actor.label[:254],
            counts=removed.as_dict(),
        )
        audit_event_record(
            actor=actor, action="erasure.create", target=erasure, changes=removed.audit_changes()
        )
        # After the rows: if the storage fails, nothing is committed and the request can be
        # sent again (deleting a file that is already gone is not an error).
        for call in calls:
            if call.recording:
                default_storage.delete(call.recording.name)
            recordings.delete_raw(tenant.public_id, call.public_id)
    return erasure
