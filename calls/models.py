from django.db import models
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
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def audit_label(self) -> str:
        return f"call from {self.caller}"

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
