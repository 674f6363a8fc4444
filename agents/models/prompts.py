from django.db import models
from django.utils import timezone

from tenants.ids import PublicIdField
from tenants.models import TenantOwnedModel


class PromptTemplate(TenantOwnedModel):
    """Named instructions with typed variables; its text lives in immutable numbered revisions."""

    public_id = PublicIdField("tpl")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="prompttemplate_public_id"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="prompttemplate_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="prompttemplate_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class PromptRevision(TenantOwnedModel):
    """One immutable text of a template. Versions pin a revision; the database refuses updates."""

    public_id = PublicIdField("rev")
    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    body = models.TextField()
    # [{"name": "clinic", "type": "string", "default": "…", "description": "…"}]; no default means
    # a version must supply the value.
    variables = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="promptrevision_public_id"
            ),
            models.UniqueConstraint(
                fields=["tenant", "template", "number"], name="promptrevision_number"
            ),
        ]

    def __str__(self) -> str:
        return f"revision {self.number}"

    @property
    def audit_label(self) -> str:
        return f"revision {self.number}"
