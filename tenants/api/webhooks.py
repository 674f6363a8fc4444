"""Webhook endpoints and their delivery log."""

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import webhooks
from tenants.api.base import TenantViewSet
from tenants.models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    id = serializers.CharField(source="public_id", read_only=True)
    rotating_until = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "status",
            "disabled_reason",
            "disabled_at",
            "rotating_until",
            "created_at",
        ]

    def get_rotating_until(self, endpoint: WebhookEndpoint) -> str | None:
        """While set, messages are signed with the previous secret as well."""
        until = endpoint.secrets.get("previous_until")
        return str(until) if until else None


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_…). Shown only now: keep it. A replay of the "
        "request (same Idempotency-Key) has null: the secret is not kept."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]

    def get_secret(self, endpoint: WebhookEndpoint) -> str | None:
        return str(self.context["secret"])


class WebhookEndpointInput(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=2000)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    event_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Any of {', '.join(webhooks.EVENT_TYPES)}; empty or absent: all of them.",
    )


class WebhookEndpointUpdate(WebhookEndpointInput):
    url = serializers.CharField(max_length=2000, required=False)


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Where the tenant's events are sent. The signing secret is shown on create and on
    rotate-secret only; deliveries are signed per Standard Webhooks (docs/webhooks.md)."""

    model = WebhookEndpoint
    permission_family = "webhooks"
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    idempotency_withheld_fields = frozenset({"secret"})

    @extend_schema(
        request=WebhookEndpointInput, responses={201: WebhookEndpointWithSecretSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = WebhookEndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhooks.endpoint_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        body = WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookEndpointUpdate, responses=WebhookEndpointSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = WebhookEndpointUpdate(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = webhooks.endpoint_update(
            endpoint=self.get_object(), actor=self.actor, **data.validated_data
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhooks.endpoint_delete(endpoint=instance, actor=self.actor)

    @extend_schema(request=None, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new secret. For 24 hours messages carry signatures with both the old and the new
        one, so receivers can switch without missing anything."""
        endpoint = self.get_object()
        secret = webhooks.endpoint_rotate_secret(endpoint=endpoint, actor=self.actor)
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        )

    @extend_schema(request=None, responses=WebhookEndpointSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Send to a disabled endpoint again (replay what it missed from the delivery log)."""
        endpoint = webhooks.endpoint_enable(endpoint=self.get_object(), actor=self.actor)
        return Response(WebhookEndpointSerializer(endpoint).data)


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    id = serializers.CharField(source="public_id", read_only=True)
    endpoint = serializers.CharField(source="endpoint.public_id", read_only=True)
    replay_of = serializers.CharField(
        source="replay_of.public_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_type",
            "subject",
            "sequence",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "replay_of",
            "created_at",
        ]


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.CharFilter(field_name="endpoint__public_id", label="whk_…")
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = django_filters.ChoiceFilter(choices=[(e, e) for e in webhooks.EVENT_TYPES])
    subject = django_filters.CharFilter(label="what the event is about, e.g. call_…")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type", "subject"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The delivery log, newest first: every event sent (or being retried) and how it went."""

    model = WebhookDelivery
    permission_family = "webhooks"
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("endpoint", "replay_of").order_by("-created_at", "-id")

    @extend_schema(request=None, responses={201: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Send this delivery's event again, as a new delivery with its own webhook-id."""
        copy = webhooks.replay(delivery=self.get_object(), actor=self.actor)
        return Response(WebhookDeliverySerializer(copy).data, status=status.HTTP_201_CREATED)
