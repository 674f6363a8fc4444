from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import services
from tenants.api import filters, serializers
from tenants.api.base import TenantScopedMixin, TenantViewSet
from tenants.models import ApiKey, AuditEvent, Invitation, Membership
from tenants.roles import MATRIX


class RootView(TenantScopedMixin):
    """Who you are and which tenant you act in: the first call to try with a new key.

    Any valid credential may ask, whatever its scopes."""

    permission_family = None

    @extend_schema(responses=serializers.RootSerializer, operation_id="root")
    def get(self, request: Request) -> Response:
        actor = self.actor
        membership = actor.membership
        principal = {
            "type": actor.kind,
            "id": actor.public_id,
            "label": actor.label,
            "role": membership.role if membership else None,
            "permissions": sorted(actor.permissions & MATRIX.permissions),
        }
        return Response(
            {
                "tenant": serializers.TenantSerializer(self.tenant).data,
                "principal": principal,
                "links": {
                    "docs": request.build_absolute_uri(reverse("api-docs")),
                    "schema": request.build_absolute_uri(reverse("api-schema")),
                },
            }
        )


class CurrentTenantView(TenantScopedMixin):
    """The tenant the credential belongs to."""

    permission_family = "tenant"

    @extend_schema(responses=serializers.TenantSerializer, operation_id="tenant_retrieve")
    def get(self, request: Request) -> Response:
        return Response(serializers.TenantSerializer(self.tenant).data)

    @extend_schema(
        request=serializers.TenantUpdateSerializer,
        responses=serializers.TenantSerializer,
        operation_id="tenant_update",
    )
    def patch(self, request: Request) -> Response:
        data = serializers.TenantUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_update(tenant=self.tenant, actor=self.actor, **data.validated_data)
        return Response(serializers.TenantSerializer(tenant).data)


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Members of the tenant and their roles. New members join through invitations."""

    model = Membership
    permission_family = "members"
    serializer_class = serializers.MemberSerializer
    filterset_class = filters.MemberFilter
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("user")

    @extend_schema(
        request=serializers.MemberUpdateSerializer, responses=serializers.MemberSerializer
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = serializers.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = self.get_object()
        if "role" in data.validated_data:  # a PATCH changes only what it names
            membership = services.membership_change_role(
                membership=membership, actor=self.actor, role=data.validated_data["role"]
            )
        return Response(serializers.MemberSerializer(membership).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.membership_remove(membership=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Pending invitations. Creating one emails a link; accepting it makes a member."""

    model = Invitation
    permission_family = "members"
    serializer_class = serializers.InvitationSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("invited_by")

    @extend_schema(
        request=serializers.InvitationCreateSerializer,
        responses={201: serializers.InvitationSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = serializers.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        return Response(
            serializers.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.invitation_revoke(invitation=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """API keys. The secret is returned once, by create; afterwards only its prefix is shown."""

    model = ApiKey
    permission_family = "api_keys"
    serializer_class = serializers.ApiKeySerializer
    filterset_class = filters.ApiKeyFilter
    http_method_names = ["get", "post", "head", "options"]
    # Only the key's hash is ever stored, so a replayed create cannot repeat the secret.
    idempotency_withheld_fields = frozenset({"key"})

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("created_by")

    @extend_schema(
        request=serializers.ApiKeyCreateSerializer,
        responses={201: serializers.ApiKeyCreatedSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = serializers.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, secret = services.api_key_create(
            tenant=self.tenant, actor=self.actor, **data.validated_data
        )
        body = serializers.ApiKeyCreatedSerializer(api_key, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=serializers.ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=self.actor)
        return Response(serializers.ApiKeySerializer(api_key).data)


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's audit log, newest first. It cannot be changed."""

    model = AuditEvent
    permission_family = "audit"
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilter
