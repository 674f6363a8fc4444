from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.models import PromptRevision, PromptTemplate
from agents.services import prompts as services
from tenants.api.base import TenantViewSet


class VariableSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    type = serializers.ChoiceField(
        choices=["string", "integer", "number", "boolean"], default="string"
    )
    default = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class PromptRevisionSerializer(serializers.ModelSerializer[PromptRevision]):
    id = serializers.CharField(source="public_id", read_only=True)
    template = serializers.CharField(source="template.public_id", read_only=True)
    variables = VariableSerializer(many=True, read_only=True)

    class Meta:
        model = PromptRevision
        fields = ["id", "template", "number", "body", "variables", "created_at"]


class PromptTemplateSerializer(serializers.ModelSerializer[PromptTemplate]):
    id = serializers.CharField(source="public_id", read_only=True)
    latest_revision = serializers.SerializerMethodField()

    class Meta:
        model = PromptTemplate
        fields = ["id", "name", "description", "latest_revision", "created_at"]

    def get_latest_revision(self, template: PromptTemplate) -> PromptRevisionSerializer:
        latest = self.context.get("latest", {}).get(template.pk)
        if latest is None:
            latest = (
                PromptRevision.objects.for_tenant(template.tenant)
                .filter(template=template)
                .select_related("template")
                .order_by("-number")
                .first()
            )
        return PromptRevisionSerializer(latest).data  # type: ignore[return-value]


class RevisionInput(serializers.Serializer[Any]):
    body = serializers.CharField(trim_whitespace=False)
    variables = serializers.ListField(child=serializers.DictField(), default=list)


class TemplateInput(RevisionInput):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TemplateUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class PreviewInput(serializers.Serializer[Any]):
    variables = serializers.DictField(default=dict)


class PreviewOutput(serializers.Serializer[Any]):
    rendered = serializers.CharField()


TEMPLATE_EXAMPLE = OpenApiExample(
    "Front desk",
    request_only=True,
    value={
        "name": "Front desk",
        "body": "You answer the phone for {{ clinic }}. Opening hours: {{ hours }}. Be brief.",
        "variables": [
            {"name": "clinic", "type": "string"},
            {"name": "hours", "type": "string", "default": "9am to 5pm, Monday to Friday"},
        ],
    },
)


class PromptTemplateViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    """Prompt templates. Their text lives in numbered revisions that never change."""

    model = PromptTemplate
    permission_family = "agents"
    serializer_class = PromptTemplateSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
        # Each template's newest revision, for the whole page in one query.
        latest: dict[int, PromptRevision] = {}
        revisions = PromptRevision.objects.for_tenant(self.tenant).filter(template__in=page)
        for revision in revisions.order_by("template_id", "number").select_related("template"):
            latest[revision.template_id] = revision
        serializer = PromptTemplateSerializer(page, many=True, context={"latest": latest})
        return self.get_paginated_response(serializer.data)

    @extend_schema(
        request=TemplateInput,
        responses={201: PromptTemplateSerializer},
        examples=[TEMPLATE_EXAMPLE],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TemplateInput(data=request.data)
        data.is_valid(raise_exception=True)
        template, _ = services.prompt_template_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        return Response(PromptTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TemplateUpdateInput, responses=PromptTemplateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TemplateUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.prompt_template_update(
            template=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(PromptTemplateSerializer(template).data)

    def perform_destroy(self, instance: PromptTemplate) -> None:
        services.prompt_template_delete(template=instance, actor=self.actor)

    @extend_schema(responses=PromptRevisionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def revisions(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template = self.get_object()
        revisions = (
            PromptRevision.objects.for_tenant(self.tenant)
            .filter(template=template)
            .select_related("template")
        )
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(PromptRevisionSerializer(page, many=True).data)

    @extend_schema(request=RevisionInput, responses={201: PromptRevisionSerializer})
    @revisions.mapping.post
    def create_revision(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = RevisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        revision = services.prompt_revision_create(
            template=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(PromptRevisionSerializer(revision).data, status=status.HTTP_201_CREATED)


class PromptRevisionViewSet(mixins.RetrieveModelMixin, TenantViewSet):
    """One revision of a prompt template. Revisions never change."""

    model = PromptRevision
    permission_family = "agents"
    serializer_class = PromptRevisionSerializer
    # Rendering a preview changes nothing, so reading is enough.
    action_permissions = {"preview": "agents:read"}

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("template")

    @extend_schema(request=PreviewInput, responses=PreviewOutput)
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = PreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        rendered = services.prompt_render(self.get_object(), data.validated_data["variables"])
        return Response({"rendered": rendered})
