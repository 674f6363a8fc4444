from django.db import models
from django.utils import timezone

from agents.models.knowledge import KnowledgeBase
from agents.models.prompts import PromptRevision
from agents.models.tools import Tool
from tenants.ids import PublicIdField, random_base62
from tenants.models import TenantOwnedModel


def new_split_seed() -> str:
    return random_base62(16)


class Agent(TenantOwnedModel):
    """A voice agent. What it does on a call is one of its published versions, chosen per caller
    through its traffic split."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    public_id = PublicIdField("agt")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Where callers go when the agent cannot take them (the account is at its call limit, or
    # the model is unreachable mid-call): an E.164 number, or empty to apologise and hang up.
    fallback_number = models.CharField(max_length=16, blank=True)
    # Changes whenever the traffic split does: callers keep their version for a split's lifetime.
    split_seed = models.CharField(max_length=16, default=new_split_seed)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="agent_public_id"),
            models.UniqueConstraint(fields=["tenant", "name"], name="agent_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="agent_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


def default_turn_detection() -> dict[str, object]:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    }


def default_outcome_taxonomy() -> list[dict[str, object]]:
    return [
        {"label": "resolved", "description": "The caller's need was met.", "resolved": True},
        {"label": "escalated", "description": "Handed to a person.", "resolved": False},
        {
            "label": "abandoned",
            "description": "The caller left before being helped.",
            "resolved": False,
        },
        {"label": "voicemail", "description": "An answering machine picked up.", "resolved": False},
        {"label": "spam", "description": "Not a genuine caller.", "resolved": False},
        {
            "label": "failed",
            "description": "A technical failure ended the call.",
            "resolved": False,
        },
    ]


def default_redaction() -> dict[str, object]:
    return {"mode": "standard", "patterns": []}


def default_languages() -> list[str]:
    return ["en"]


class AgentVersion(TenantOwnedModel):
    """Everything an agent does on a call. Drafts are edited; a published version never changes
    (the database refuses it), it can only be archived."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        ARCHIVED = "archived"

    public_id = PublicIdField("ver")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)

    model_provider = models.CharField(max_length=32, default="openai")
    model = models.CharField(max_length=64, default="gpt-realtime")
    voice = models.CharField(max_length=32, default="marin")
    languages = models.JSONField(default=default_languages)
    greeting = models.TextField(blank=True)
    prompt_revision = models.ForeignKey(
        PromptRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    prompt_variables = models.JSONField(default=dict, blank=True)
    # The rendered instructions, fixed when the version is published.
    instructions = models.TextField(blank=True)
    turn_detection = models.JSONField(default=default_turn_detection)
    tools = models.ManyToManyField(Tool, through="VersionTool", related_name="+")
    knowledge_bases = models.ManyToManyField(
        KnowledgeBase, through="VersionKnowledgeBase", related_name="+"
    )
    # [{"name": "front desk", "destination": "+15551234567" or "sip:…", "description": "…"}]
    transfer_targets = models.JSONField(default=list, blank=True)
    max_call_duration_seconds = models.PositiveIntegerField(default=600)
    silence_timeout_seconds = models.PositiveIntegerField(default=30)
    recording_enabled = models.BooleanField(default=False)
    redaction = models.JSONField(default=default_redaction)
    outcome_taxonomy = models.JSONField(default=default_outcome_taxonomy)
    # The tenant's own fields to pull out of each call after it ends, as a JSON Schema object
    # ({"type": "object", "properties": {…}}); empty: only the standard ones.
    extraction_schema = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.CharField(max_length=254, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="agentversion_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "agent", "number"], name="agentversion_number"
            ),
        ]

    def __str__(self) -> str:
        return f"version {self.number}"

    @property
    def audit_label(self) -> str:
        return f"version {self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class VersionTool(TenantOwnedModel):
    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="+")
    tool = models.ForeignKey(Tool, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version", "tool"], name="versiontool_once"),
        ]


class VersionKnowledgeBase(TenantOwnedModel):
    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "version", "knowledge_base"], name="versionkb_once"
            ),
        ]


class TrafficAllocation(TenantOwnedModel):
    """One entry of an agent's traffic split: this published version gets `weight` percent."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "agent", "version"], name="allocation_once"),
        ]
