"""Operator admin for configuration. Everything is read-only here: tenants change their own
configuration through the API and console, where it is validated and audited. Secrets are
never shown."""

from typing import Any

from django.contrib import admin

from agents.models import (
    Agent,
    AgentVersion,
    CarrierAccount,
    Chunk,
    Document,
    Integration,
    KnowledgeBase,
    PhoneNumber,
    PromptRevision,
    PromptTemplate,
    Tool,
    TrafficAllocation,
    VersionKnowledgeBase,
    VersionTool,
)
from tenants.admin import ReadOnlyAdmin


class SecretsMaskedAdmin(ReadOnlyAdmin):
    exclude = ["secrets"]
    readonly_fields = ["secret_fields"]

    @admin.display(description="Secrets")
    def secret_fields(self, obj: Any) -> str:
        names = sorted(k for k, v in (obj.secrets or {}).items() if v)
        return ", ".join(f"{name}: ••••••" for name in names) or "none"


@admin.register(Integration)
class IntegrationAdmin(SecretsMaskedAdmin):
    list_display = ["public_id", "tenant", "name", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(CarrierAccount)
class CarrierAccountAdmin(SecretsMaskedAdmin):
    list_display = ["public_id", "tenant", "name", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(Tool)
class ToolAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "name", "kind", "integration", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant", "integration"]


@admin.register(PromptTemplate)
class PromptTemplateAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "name", "created_at"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(PromptRevision)
class PromptRevisionAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "template", "number", "created_at"]
    search_fields = ["public_id", "template__name"]
    list_select_related = ["tenant", "template"]


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "name", "language", "created_at"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "tenant",
        "knowledge_base",
        "title",
        "content_type",
        "size_bytes",
        "chunk_count",
    ]
    search_fields = ["public_id", "title"]
    list_select_related = ["tenant", "knowledge_base"]
    exclude = ["text"]


@admin.register(Chunk)
class ChunkAdmin(ReadOnlyAdmin):
    list_display = ["document", "position", "tenant"]
    search_fields = ["document__public_id"]
    list_select_related = ["tenant", "document"]
    exclude = ["search_vector"]


@admin.register(Agent)
class AgentAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "name", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "agent", "number", "status", "published_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "agent__name"]
    list_select_related = ["tenant", "agent"]


@admin.register(VersionTool)
class VersionToolAdmin(ReadOnlyAdmin):
    list_display = ["version", "tool", "tenant"]
    list_select_related = ["tenant", "version", "tool"]


@admin.register(VersionKnowledgeBase)
class VersionKnowledgeBaseAdmin(ReadOnlyAdmin):
    list_display = ["version", "knowledge_base", "tenant"]
    list_select_related = ["tenant", "version", "knowledge_base"]


@admin.register(TrafficAllocation)
class TrafficAllocationAdmin(ReadOnlyAdmin):
    list_display = ["agent", "version", "weight", "tenant"]
    list_select_related = ["tenant", "agent", "version"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(ReadOnlyAdmin):
    list_display = [
        "e164",
        "public_id",
        "tenant",
        "carrier_account",
        "agent",
        "status",
        "created_at",
    ]
    list_filter = ["status", "carrier_account__kind"]
    search_fields = ["e164", "public_id", "carrier_sid", "tenant__name"]
    list_select_related = ["tenant", "carrier_account", "agent"]
