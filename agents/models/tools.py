from django.db import models
from django.utils import timezone

from tenants.encryption import EncryptedJSONField
from tenants.ids import PublicIdField
from tenants.models import TenantOwnedModel


class Integration(TenantOwnedModel):
    """A tenant's credentials for an outside system. Secret fields are encrypted at rest and are
    never returned by the API."""

    public_id = PublicIdField("int")
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="integration_public_id"),
            models.UniqueConstraint(fields=["tenant", "name"], name="integration_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="integration_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class Tool(TenantOwnedModel):
    """Something the model may call during a call."""

    class Kind(models.TextChoices):
        HTTP = "http"
        CONNECTOR = "connector"
        TRANSFER_CALL = "transfer_call"
        END_CALL = "end_call"
        SEARCH_KNOWLEDGE = "search_knowledge"

    public_id = PublicIdField("tool")
    # The function name the model sees.
    name = models.CharField(max_length=64)
    description = models.TextField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # JSON schema of the arguments the model passes.
    parameters = models.JSONField(default=dict)
    config = models.JSONField(default=dict, blank=True)
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="tool_public_id"),
            models.UniqueConstraint(fields=["tenant", "name"], name="tool_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="tool_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name
