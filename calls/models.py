from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, AgentVersion, PhoneNumber
from tenants.ids import PublicIdField
from tenants.models import TenantOwnedModel


class Call(TenantOwnedModel):
    """One phone call answered (or refused) by an agent."""

    class Status(models.TextChoices):
        RINGING = "ringing"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        FAILED = "failed"

    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class Carrier(models.TextChoices):
        TWILIO = "twilio"
        SANDBOX = "sandbox"
        OPENAI_SIP = "openai_sip"

    class EndReason(models.TextChoices):
        """Why a call ended (docs/calls.md describes each)."""

        CALLER_HANGUP = "caller_hangup"
        AGENT_HANGUP = "agent_hangup"
        TRANSFERRED = "transferred"
        MAX_DURATION = "max_duration"
        SILENCE_TIMEOUT = "silence_timeout"
        OVER_CAPACITY = "over_capacity"
        USAGE_CAP = "usage_cap"
        NO_AGENT = "no_agent"
        MODEL_ERROR = "model_error"
        CARRIER_ERROR = "carrier_error"
        STREAM_NEVER_CONNECTED = "stream_never_connected"
        WORKER_LOST = "worker_lost"

    class TransferStatus(models.TextChoices):
        NONE = "none"
        INITIATED = "initiated"
        RINGING = "ringing"
        BRIDGED = "bridged"
        FAILED = "failed"

    public_id = PublicIdField("call")
    phone_number = models.ForeignKey(
        PhoneNumber, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    caller = models.CharField(max_length=255)
    callee = models.CharField(max_length=255)
    direction = models.CharField(
        max_length=16, choices=Direction.choices, default=Direction.INBOUND
    )
    carrier = models.CharField(max_length=16, choices=Carrier.choices)
    # CallSid for Twilio (and sandbox), the rtc_… id on the OpenAI SIP path.
    carrier_call_id = models.CharField(max_length=128)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    version = models.ForeignKey(
        AgentVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # True when the model was the built-in Realtime simulator rather than OpenAI.
    sandbox = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RINGING)
    started_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Sums of the model's per-response `usage` (tokens by kind).
    usage = models.JSONField(default=dict, blank=True)
    transfer_status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.NONE
    )
    transfer_target = models.CharField(max_length=255, blank=True)
    # Written every few seconds by the worker running the call; the sweeper ends calls whose
    # worker stopped writing it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # After the call (calls/pipeline.py): each step leaves its result here.
    redacted_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)
    # {"contact_reason": …, "sentiment": …, "fields": {tenant-defined fields}}
    extracted = models.JSONField(default=dict, blank=True)
    recording = models.FileField(upload_to="recordings/", max_length=255, blank=True)
    recording_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    recording_sha256 = models.CharField(max_length=64, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    # The data lifecycle (calls/lifecycle.py): when the tenant's retention period ended for the
    # call's recording and for what was said (whatever existed was removed then), and when its
    # caller's personal data was erased on request.
    recording_expired_at = models.DateTimeField(null=True, blank=True)
    transcript_expired_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="call_public_id"),
            # Carrier callbacks name the call by the carrier's id, before the tenant is known;
            # the same id twice is the same call (a retried webhook).
            models.UniqueConstraint(fields=["carrier", "carrier_call_id"], name="call_carrier_id"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-started_at"], name="call_recent"),
            models.Index(fields=["tenant", "status"], name="call_by_status"),
            models.Index(fields=["tenant", "agent", "-started_at"], name="call_by_agent"),
            # The daily retention task walks the calls it has not dealt with yet, oldest first;
            # calls it is done with leave these indexes, so its work stays proportional to what
            # is due rather than to the history kept.
            models.Index(
                fields=["tenant", "started_at"],
                condition=Q(recording_expired_at=None),
                name="tenant_call_recording_due",
            ),
            models.Index(
                fields=["tenant", "started_at"],
                condition=Q(transcript_expired_at=None),
                name="tenant_call_transcript_due",
            ),
            # An erasure finds a number's calls on either side.
            models.Index(fields=["tenant", "caller"], name="tenant_call_by_caller"),
            models.Index(fields=["tenant", "callee"], name="tenant_call_by_callee"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def audit_label(self) -> str:
        # Never the caller's number: the audit log is append-only, so nothing written there
        # could be erased later.
        return f"{self.direction} call of {self.started_at:%Y-%m-%d %H:%M} UTC"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.RINGING, self.Status.IN_PROGRESS)


class CallEvent(TenantOwnedModel):
    """Something that happened during a call, in order: a transcript turn, a tool call, a
    barge-in, a DTMF digit, a transfer step, an error or a turn's latency."""

    class Kind(models.TextChoices):
        TRANSCRIPT = "transcript"
        TOOL_CALL = "tool_call"
        BARGE_IN = "barge_in"
        DTMF = "dtmf"
        TRANSFER = "transfer"
        LATENCY = "latency"
        ERROR = "error"
        NOTICE = "notice"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    # Milliseconds since the call started.
    offset_ms = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "call", "sequence"], name="callevent_order"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.sequence}"


class Outcome(TenantOwnedModel):
    """How a call ended for the business, with the evidence and who (or what) decided it.
    Billing counts calls whose outcome is resolved."""

    class Source(models.TextChoices):
        RULE = "rule"
        MODEL = "model"
        HUMAN = "human"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="outcomes")
    label = models.CharField(max_length=64)
    resolved = models.BooleanField()
    confidence = models.FloatField()
    rationale = models.TextField(blank=True)
    # [{"kind": "transcript", "sequence": 4, "quote": "…"}, {"kind": "tool", …}, …]
    evidence = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    rule = models.CharField(max_length=64, blank=True)  # which rule, when source is rule
    model = models.CharField(max_length=64, blank=True)  # which model, when source is model
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Why this source decided: e.g. the model was unavailable and rules decided instead.
    note = models.CharField(max_length=500, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "call"], name="outcome_per_call")]

    def __str__(self) -> str:
        return self.label

    @property
    def public_id(self) -> str:
        return self.call.public_id

    @property
    def audit_label(self) -> str:
        return f"outcome of {self.call.audit_label}"


class PostCallJob(TenantOwnedModel):
    """The transactional outbox of the post-call pipeline: written in the same transaction that
    ends the call, so the work is never lost between the commit and the queue. The relay
    (calls.tasks.dispatch_post_call) re-queues jobs that have not finished. A task takes
    (claims) its own job and, when others are waiting, up to a batch of them."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    times_queued = models.PositiveIntegerField(default=0)
    # The run (task id) that took the job, and when: another run leaves it alone until
    # pipeline.claim_timeout(), but the same task delivered again (its worker died) takes it back.
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "call"], name="postcall_per_call")]
        indexes = [
            models.Index(fields=["tenant", "finished_at", "queued_at"], name="postcall_unfinished")
        ]

    def __str__(self) -> str:
        return f"post-call work for {self.call_id}"


class Erasure(TenantOwnedModel):
    """A request to erase the personal data of every call one phone number made or took, and
    what it removed. The number itself is never stored: only a keyed hash of it (per tenant), so
    a later request can tell whether the number was erased before."""

    public_id = PublicIdField("era")
    number_hash = models.CharField(max_length=64)
    # Who asked, as a snapshot (like the audit log): a member or an API key.
    requested_by_type = models.CharField(max_length=16)
    requested_by_id = models.CharField(max_length=40, blank=True)
    requested_by_label = models.CharField(max_length=254, blank=True)
    # What was removed, by kind (calls.lifecycle.Removed).
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="tenant_erasure_public_id"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="tenant_erasure_recent"),
            models.Index(fields=["tenant", "number_hash"], name="tenant_erasure_by_number"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def audit_label(self) -> str:
        return f"erasure {self.public_id}"


class RetentionCheckpoint(TenantOwnedModel):
    """How far the daily retention task has got with a tenant's webhook deliveries, which carry
    no marker of their own: every delivery created before `webhook_bodies_through` has lost its
    body, except one still being retried then, which is looked at again on later runs."""

    webhook_bodies_through = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="tenant_retention_checkpoint"),
        ]

    def __str__(self) -> str:
        return f"retention of tenant {self.tenant_id}"
