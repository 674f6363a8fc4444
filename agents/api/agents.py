from typing import Any

import yaml
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import resolve, resolve_many
from agents.models import (
    Agent,
    AgentVersion,
    KnowledgeBase,
    PromptRevision,
    Tool,
    TrafficAllocation,
)
from agents.selectors import agent_export, rendered_instructions, traffic_split, version_diff
from agents.services import agents as services
from agents.services.portability import agent_import
from agents.versions import VOICES
from tenants.api.base import TenantViewSet
from tenants.errors import InvalidInput


class AgentSerializer(serializers.ModelSerializer[Agent]):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "description",
            "fallback_number",
            "status",
            "created_at",
            "updated_at",
        ]


FALLBACK_HELP = (
    "E.164 number callers are sent to when the agent cannot take the call (over capacity, "
    "model unreachable); empty: those callers hear an apology and the call ends."
)


class AgentInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    fallback_number = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=FALLBACK_HELP
    )


class AgentUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    fallback_number = serializers.CharField(
        required=False, allow_blank=True, help_text=FALLBACK_HELP
    )
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)


class TransferTargetSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    destination = serializers.CharField(help_text="E.164 number or SIP URI")
    description = serializers.CharField(required=False)


class OutcomeSerializer(serializers.Serializer[Any]):
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField(required=False)
    resolved = serializers.BooleanField(
        help_text="Whether this outcome is billed as a resolved conversation"
    )


class VersionSerializer(serializers.ModelSerializer[AgentVersion]):
    id = serializers.CharField(source="public_id", read_only=True)
    agent = serializers.CharField(source="agent.public_id", read_only=True)
    prompt_revision = serializers.CharField(
        source="prompt_revision.public_id", allow_null=True, default=None
    )
    instructions = serializers.SerializerMethodField(
        help_text="The rendered prompt: fixed at publishing; for drafts, rendered now "
        "(empty while it cannot be)."
    )
    tools = serializers.SerializerMethodField()
    knowledge_bases = serializers.SerializerMethodField()
    transfer_targets = TransferTargetSerializer(many=True)
    outcome_taxonomy = OutcomeSerializer(many=True)

    class Meta:
        model = AgentVersion
        fields = [
            "id",
            "agent",
            "number",
            "status",
            "model_provider",
            "model",
            "voice",
            "languages",
            "greeting",
            "prompt_revision",
            "prompt_variables",
            "instructions",
            "turn_detection",
            "tools",
            "knowledge_bases",
            "transfer_targets",
            "max_call_duration_seconds",
            "silence_timeout_seconds",
            "recording_enabled",
            "redaction",
            "outcome_taxonomy",
            "extraction_schema",
            "created_at",
            "published_at",
            "published_by",
            "archived_at",
        ]

    def get_instructions(self, version: AgentVersion) -> str:
        return rendered_instructions(version)

    def get_tools(self, version: AgentVersion) -> list[str]:
        return sorted(t.public_id for t in version.tools.all())

    def get_knowledge_bases(self, version: AgentVersion) -> list[str]:
        return sorted(k.public_id for k in version.knowledge_bases.all())


class VersionInput(serializers.Serializer[Any]):
    based_on = serializers.CharField(required=False, help_text="ver_… to copy (new drafts only)")
    model_provider = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    voice = serializers.ChoiceField(choices=VOICES, required=False)
    languages = serializers.ListField(child=serializers.CharField(), required=False)
    greeting = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    prompt_revision = serializers.CharField(required=False, allow_null=True, help_text="rev_…")
    prompt_variables = serializers.DictField(required=False)
    turn_detection = serializers.DictField(required=False)
    tools = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="tool_… ids"
    )
    knowledge_bases = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="kb_… ids"
    )
    transfer_targets = serializers.ListField(child=serializers.DictField(), required=False)
    max_call_duration_seconds = serializers.IntegerField(required=False)
    silence_timeout_seconds = serializers.IntegerField(required=False)
    recording_enabled = serializers.BooleanField(required=False)
    redaction = serializers.DictField(required=False)
    outcome_taxonomy = serializers.ListField(child=serializers.DictField(), required=False)
    extraction_schema = serializers.DictField(
        required=False,
        help_text="Fields to extract after each call: "
        '{"type": "object", "properties": {"order_id": {"type": "string"}}}',
    )


class PublishInput(serializers.Serializer[Any]):
    activate = serializers.BooleanField(
        default=True,
        help_text="Send all of the agent's calls to this version now "
        "(otherwise use a traffic split)",
    )


class AllocationSerializer(serializers.Serializer[Any]):
    version = serializers.CharField(help_text="ver_…")
    version_number = serializers.IntegerField(read_only=True)
    weight = serializers.IntegerField(min_value=1, max_value=100)


class TrafficSplitSerializer(serializers.Serializer[Any]):
    allocations = AllocationSerializer(many=True)


class RollbackInput(serializers.Serializer[Any]):
    version = serializers.CharField(help_text="ver_… of an earlier published version")


class DiffSerializer(serializers.Serializer[Any]):
    from_ = serializers.CharField()
    to = serializers.CharField()
    changes = serializers.DictField(
        help_text='{"field": {"from": …, "to": …}} for each changed field'
    )
    instructions_diff = serializers.CharField(help_text="Unified diff of the rendered instructions")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def split_body(allocations: list[TrafficAllocation]) -> dict[str, Any]:
    return {
        "allocations": [
            {"version": a.version.public_id, "version_number": a.version.number, "weight": a.weight}
            for a in allocations
        ]
    }


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        from rest_framework.exceptions import ParseError

        try:
            return yaml.safe_load(stream.read())
        except yaml.YAMLError as exc:
            raise ParseError(f"YAML parse error: {exc}") from None


VERSION_EXAMPLE = OpenApiExample(
    "A draft",
    request_only=True,
    value={
        "voice": "marin",
        "greeting": "Thanks for calling Acme Dental, how can I help?",
        "prompt_revision": "rev_…",
        "prompt_variables": {"clinic": "Acme Dental"},
        "tools": ["tool_…"],
        "transfer_targets": [{"name": "front desk", "destination": "+14155550123"}],
    },
)


class AgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Voice agents. What an agent does is in its versions; which version answers a caller is its
    traffic split."""

    model = Agent
    permission_family = "agents"
    serializer_class = AgentSerializer
    http_method_names = ["get", "post", "patch", "put", "head", "options"]
    action_permissions = {
        "set_traffic_split": "agents:publish",
        "rollback": "agents:publish",
        "export": "agents:read",
    }

    @extend_schema(request=AgentInput, responses={201: AgentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AgentInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = services.agent_create(tenant=self.tenant, actor=self.actor, **data.validated_data)
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AgentUpdateInput, responses=AgentSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AgentUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = services.agent_update(
            agent=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(AgentSerializer(agent).data)

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        agent = self.get_object()
        queryset = version_queryset(
            AgentVersion.objects.for_tenant(self.tenant).filter(agent=agent)
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(
        request=VersionInput, responses={201: VersionSerializer}, examples=[VERSION_EXAMPLE]
    )
    @versions.mapping.post
    def create_version(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new draft: empty, or a copy of `based_on` with the given changes."""
        agent = self.get_object()
        fields = version_fields(self, request.data)
        based_on = fields.pop("based_on", None)
        if based_on is not None:
            based_on = resolve(AgentVersion, self.tenant, based_on, "based_on")
        version = services.version_create(
            agent=agent, actor=self.actor, based_on=based_on, **fields
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TrafficSplitSerializer)
    @action(detail=True, methods=["get"], url_path="traffic-split")
    def traffic_split(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Which published versions take the agent's calls, in percent. A caller keeps the same
        version for as long as the split stands."""
        return Response(split_body(traffic_split(self.get_object())))

    @extend_schema(
        request=TrafficSplitSerializer,
        responses=TrafficSplitSerializer,
        examples=[
            OpenApiExample(
                "90/10",
                request_only=True,
                value={
                    "allocations": [
                        {"version": "ver_a…", "weight": 90},
                        {"version": "ver_b…", "weight": 10},
                    ]
                },
            )
        ],
    )
    @traffic_split.mapping.put
    def set_traffic_split(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        agent = self.get_object()
        data = TrafficSplitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        allocations = [
            (
                resolve(AgentVersion, self.tenant, item["version"], f"allocations.{i}.version"),
                item["weight"],
            )
            for i, item in enumerate(data.validated_data["allocations"])
        ]
        split = services.agent_set_traffic_split(
            agent=agent, actor=self.actor, allocations=allocations
        )
        return Response(split_body(split))

    @extend_schema(request=RollbackInput, responses=TrafficSplitSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Send all calls to an earlier published version."""
        agent = self.get_object()
        data = RollbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = resolve(AgentVersion, self.tenant, data.validated_data["version"], "version")
        split = services.agent_rollback(agent=agent, actor=self.actor, version=version)
        return Response(split_body(split))

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "yaml"], default="json")],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            # The same document, written as YAML.
            (200, "application/yaml"): OpenApiTypes.OBJECT,
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        """The agent as a document (config as code); POST it to /v1/agents/import to recreate it."""
        written_as = request.query_params.get("format") or "json"
        if written_as not in ("json", "yaml"):
            raise InvalidInput.field("format", "The format is json or yaml.")
        document = agent_export(self.get_object())
        if written_as == "yaml":
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            return HttpResponse(text, content_type="application/yaml; charset=utf-8")
        return Response(document)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        responses={201: AgentSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        url_name="import",
        parser_classes=[JSONParser, YAMLParser],
    )
    def import_(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create an agent from an exported document (JSON or YAML). Tools and knowledge bases are
        matched by name; prompt templates are matched by name and text, or created."""
        agent = agent_import(tenant=self.tenant, actor=self.actor, document=request.data)
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)


def version_queryset(queryset: Any) -> Any:
    return (
        queryset.select_related("agent", "prompt_revision")
        .prefetch_related("tools", "knowledge_bases")
        .order_by("-number")
    )


def version_fields(view: Any, body: Any) -> dict[str, Any]:
    """Validated version fields, with ids turned into the tenant's objects."""
    data = VersionInput(data=body)
    data.is_valid(raise_exception=True)
    fields = dict(data.validated_data)
    tenant = view.tenant
    if "prompt_revision" in fields and fields["prompt_revision"] is not None:
        fields["prompt_revision"] = resolve(
            PromptRevision, tenant, fields["prompt_revision"], "prompt_revision"
        )
    if "tools" in fields:
        fields["tools"] = resolve_many(Tool, tenant, fields["tools"], "tools")
    if "knowledge_bases" in fields:
        fields["knowledge_bases"] = resolve_many(
            KnowledgeBase, tenant, fields["knowledge_bases"], "knowledge_bases"
        )
    return fields


class VersionViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    """One version of an agent. Drafts are edited; publishing freezes them for good."""

    model = AgentVersion
    permission_family = "agents"
    serializer_class = VersionSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {"publish": "agents:publish", "archive": "agents:publish"}

    def scope_queryset(self, queryset: Any) -> Any:
        return version_queryset(queryset)

    @extend_schema(request=VersionInput, responses=VersionSerializer, examples=[VERSION_EXAMPLE])
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        fields = version_fields(self, request.data)
        if "based_on" in fields:
            raise InvalidInput.field(
                "based_on", "Only a new draft can be based on another version."
            )
        services.version_update(version=version, actor=self.actor, **fields)
        return Response(VersionSerializer(self.get_object()).data)

    def perform_destroy(self, instance: AgentVersion) -> None:
        services.version_delete(version=instance, actor=self.actor)

    @extend_schema(request=PublishInput, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check everything a call needs (all problems are listed at once) and freeze the draft."""
        version = self.get_object()
        data = PublishInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.version_publish(version=version, actor=self.actor, **data.validated_data)
        return Response(VersionSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.version_archive(version=self.get_object(), actor=self.actor)
        return Response(VersionSerializer(self.get_object()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("against", str, required=True, description="ver_… to compare with")
        ],
        responses=DiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """What changed from `against` to this version, field by field, and the instructions as a
        unified diff."""
        version = self.get_object()
        other = resolve(AgentVersion, self.tenant, request.query_params.get("against"), "against")
        return Response(version_diff(other, version))
