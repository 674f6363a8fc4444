from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import services
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, User
from tenants.roles import MATRIX, Role


class UserSummarySerializer(serializers.ModelSerializer[User]):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "name"]


class TenantLimitsSerializer(serializers.Serializer[Tenant]):
    max_concurrent_calls = serializers.IntegerField(read_only=True)
    api_requests_per_minute = serializers.IntegerField(read_only=True)
    max_agents = serializers.IntegerField(read_only=True)
    max_phone_numbers = serializers.IntegerField(read_only=True)
    max_document_bytes = serializers.IntegerField(read_only=True)
    max_outbound_calls_per_minute = serializers.IntegerField(read_only=True)
    max_number_purchases_per_day = serializers.IntegerField(
        read_only=True, help_text="Numbers the tenant may buy in any 24 hours."
    )


def _retention_days(what: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=services.RETENTION_DAYS_MIN,
        max_value=services.RETENTION_DAYS_MAX,
        help_text=f"Days {what} are kept after a call; then the daily retention task removes "
        "them (needs privacy:write to change).",
    )


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    id = serializers.CharField(source="public_id", read_only=True)
    limits = TenantLimitsSerializer(source="*", read_only=True)
    recording_retention_days = _retention_days("recordings")
    transcript_retention_days = _retention_days(
        "transcripts, tool data, summaries and extracted fields"
    )
    webhook_body_retention_days = _retention_days("webhook delivery bodies and stored responses")

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "status",
            "limits",
            "recording_retention_days",
            "transcript_retention_days",
            "webhook_body_retention_days",
            "created_at",
        ]
        read_only_fields = ["slug", "status", "created_at"]


class TenantUpdateSerializer(serializers.Serializer[Tenant]):
    name = serializers.CharField(max_length=200)
    recording_retention_days = _retention_days("recordings")
    transcript_retention_days = _retention_days(
        "transcripts, tool data, summaries and extracted fields"
    )
    webhook_body_retention_days = _retention_days("webhook delivery bodies and stored responses")


class MemberSerializer(serializers.ModelSerializer[Membership]):
    id = serializers.CharField(source="public_id", read_only=True)
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MemberUpdateSerializer(serializers.Serializer[Membership]):
    role = serializers.ChoiceField(choices=Role.choices, required=False)


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    id = serializers.CharField(source="public_id", read_only=True)
    invited_by = UserSummarySerializer(read_only=True, allow_null=True)
    expired = serializers.BooleanField(source="is_expired", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "created_at", "expires_at", "expired"]


class InvitationCreateSerializer(serializers.Serializer[Invitation]):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    id = serializers.CharField(source="public_id", read_only=True)
    created_by = UserSummarySerializer(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "status",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["active", "revoked", "expired"]))
    def get_status(self, api_key: ApiKey) -> str:
        return services.api_key_status(api_key)


class ApiKeyCreateSerializer(serializers.Serializer[ApiKey]):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(MATRIX.key_scopes)),
        allow_empty=False,
        min_length=1,  # what allow_empty says, in words the schema shows
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField(
        help_text="The secret. It is shown in this response only; store it now. A replay of "
        "the request (same Idempotency-Key) has null: the secret is not kept."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]

    def get_key(self, api_key: ApiKey) -> str | None:
        return str(self.context["secret"])


class AuditActorSerializer(serializers.Serializer[AuditEvent]):
    type = serializers.CharField(source="actor_type")
    id = serializers.CharField(source="actor_id")
    label = serializers.CharField(source="actor_label")  # type: ignore[assignment]


class AuditTargetSerializer(serializers.Serializer[AuditEvent]):
    type = serializers.CharField(source="target_type")
    id = serializers.CharField(source="target_id")
    label = serializers.CharField(source="target_label")  # type: ignore[assignment]


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    id = serializers.CharField(source="public_id", read_only=True)
    actor = AuditActorSerializer(source="*", read_only=True)
    target = AuditTargetSerializer(source="*", read_only=True)
    changes = serializers.DictField(
        read_only=True,
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="For each changed field: [value before, value after].",
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "target",
            "changes",
            "ip_address",
            "request_id",
            "created_at",
        ]


class PrincipalSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["user", "api_key"])
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField())


class RootSerializer(serializers.Serializer[Any]):
    tenant = TenantSerializer()
    principal = PrincipalSerializer()
    links = serializers.DictField(child=serializers.CharField())
