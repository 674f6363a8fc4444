from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import resolve
from agents.connectors import CONNECTORS
from agents.integrations import integration_kinds
from agents.models import AgentVersion, Integration, Tool
from agents.services import tools as services
from agents.tool_runtime import tool_run
from tenants.api.base import TenantScopedMixin, TenantViewSet

# --- Integrations -----------------------------------------------------------------------------


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    id = serializers.CharField(source="public_id", read_only=True)
    secrets_set = serializers.SerializerMethodField(help_text="Which secret fields hold a value.")

    class Meta:
        model = Integration
        fields = ["id", "kind", "name", "config", "secrets_set", "created_at", "updated_at"]

    def get_secrets_set(self, integration: Integration) -> list[str]:
        return sorted(k for k, v in integration.secrets.items() if v)


class IntegrationInput(serializers.Serializer[Any]):
    kind = serializers.CharField()
    name = serializers.CharField(max_length=100)
    config = serializers.DictField(default=dict)
    secrets = serializers.DictField(default=dict, write_only=True)


class IntegrationUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    config = serializers.DictField(required=False)
    secrets = serializers.DictField(required=False, write_only=True)


class IntegrationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Credentials for outside systems. Secrets are write-only: responses say which are set."""

    model = Integration
    permission_family = "integrations"
    serializer_class = IntegrationSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        request=IntegrationInput,
        responses={201: IntegrationSerializer},
        examples=[
            OpenApiExample(
                "Zendesk",
                request_only=True,
                value={
                    "kind": "zendesk",
                    "name": "Support desk",
                    "config": {"subdomain": "acme", "email": "ops@acme.test"},
                    "secrets": {"api_token": "…"},
                },
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = IntegrationInput(data=request.data)
        data.is_valid(raise_exception=True)
        integration = services.integration_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        return Response(IntegrationSerializer(integration).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=IntegrationUpdateInput, responses=IntegrationSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = IntegrationUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        integration = services.integration_update(
            integration=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(IntegrationSerializer(integration).data)

    def perform_destroy(self, instance: Integration) -> None:
        services.integration_delete(integration=instance, actor=self.actor)


class CredentialFieldSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    # Declared fields leave the class namespace; these names only shadow Field's in the stubs.
    label = serializers.CharField()  # type: ignore[assignment]
    secret = serializers.BooleanField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    help = serializers.CharField()


class OperationSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.DictField()


class IntegrationKindSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    fields = CredentialFieldSerializer(many=True)  # type: ignore[assignment]
    operations = OperationSerializer(
        many=True, help_text="Tools a connector offers (kind connector)."
    )


class IntegrationKindsView(TenantScopedMixin):
    """The kinds of integration, with the credential fields each needs and, for connectors, the
    operations their tools can perform."""

    permission_family = "integrations"

    @extend_schema(
        responses=IntegrationKindSerializer(many=True), operation_id="integration_kinds_list"
    )
    def get(self, request: Request) -> Response:
        kinds = []
        for kind in integration_kinds().values():
            connector = CONNECTORS.get(kind.kind)
            operations = list(connector.operations.values()) if connector else []
            kinds.append(
                {
                    "kind": kind.kind,
                    "label": kind.label,
                    "description": kind.description,
                    "fields": kind.fields,
                    "operations": operations,
                }
            )
        return Response(IntegrationKindSerializer(kinds, many=True).data)


# --- Tools ------------------------------------------------------------------------------------


class ToolSerializer(serializers.ModelSerializer[Tool]):
    id = serializers.CharField(source="public_id", read_only=True)
    integration = serializers.CharField(
        source="integration.public_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Tool
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "parameters",
            "config",
            "integration",
            "created_at",
            "updated_at",
        ]


class ToolInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=Tool.Kind.choices)
    parameters = serializers.DictField(
        required=False, help_text="JSON schema of the arguments (http tools)."
    )
    config = serializers.DictField(required=False)
    integration = serializers.CharField(required=False, allow_null=True, help_text="int_… id")


class ToolUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64, required=False)
    description = serializers.CharField(required=False)
    parameters = serializers.DictField(required=False)
    config = serializers.DictField(required=False)
    integration = serializers.CharField(required=False, allow_null=True)


class ToolTestInput(serializers.Serializer[Any]):
    arguments = serializers.DictField(default=dict)
    version = serializers.CharField(
        required=False, help_text="ver_… whose transfer targets and knowledge to use"
    )


class ToolTestOutput(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField()
    status = serializers.IntegerField(
        allow_null=True, help_text="HTTP status from the tool's service"
    )
    duration_ms = serializers.FloatField()
    action = serializers.DictField(
        allow_null=True, help_text="What a live call would do (transfer, end)"
    )


HTTP_TOOL_EXAMPLE = OpenApiExample(
    "Order status over HTTP",
    request_only=True,
    value={
        "name": "order_status",
        "description": "Look up an order by number when the caller asks where it is.",
        "kind": "http",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "config": {
            "method": "GET",
            "url": "https://api.example.com/orders/{order_id}",
            "response_mapping": {"status": "order.status", "eta": "order.delivery_estimate"},
            "timeout_seconds": 5,
        },
        "integration": "int_…",
    },
)


class ToolViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """What agents can call during a call: HTTP requests, connector operations, and the built-in
    transfer_call, end_call and search_knowledge."""

    model = Tool
    permission_family = "tools"
    serializer_class = ToolSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("integration")

    def _integration(self, value: Any) -> Integration | None:
        return None if value is None else resolve(Integration, self.tenant, value, "integration")

    @extend_schema(request=ToolInput, responses={201: ToolSerializer}, examples=[HTTP_TOOL_EXAMPLE])
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ToolInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["integration"] = self._integration(fields.get("integration"))
        tool = services.tool_create(tenant=self.tenant, actor=self.actor, **fields)
        return Response(ToolSerializer(tool).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ToolUpdateInput, responses=ToolSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ToolUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "integration" in fields:
            fields["integration"] = self._integration(fields["integration"])
        tool = services.tool_update(tool=self.get_object(), actor=self.actor, **fields)
        return Response(ToolSerializer(tool).data)

    def perform_destroy(self, instance: Tool) -> None:
        services.tool_delete(tool=instance, actor=self.actor)

    @extend_schema(request=ToolTestInput, responses=ToolTestOutput)
    @action(detail=True, methods=["post"])
    def test(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Run the tool with sample arguments, as a call would, and report the result and timing.
        Nothing is recorded; built-in tools report the action a call would take."""
        data = ToolTestInput(data=request.data)
        data.is_valid(raise_exception=True)
        version_id = data.validated_data.get("version")
        version = resolve(AgentVersion, self.tenant, version_id, "version") if version_id else None
        outcome = tool_run(self.get_object(), data.validated_data["arguments"], version=version)
        return Response(ToolTestOutput(outcome).data)
