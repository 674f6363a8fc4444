"""The one way to build a tenant-scoped API endpoint.

`TenantViewSet` scopes every queryset to the tenant of the credential, checks the permission
matrix and rate limits, and makes every POST idempotent with an `Idempotency-Key` header.
Subclasses cannot override `get_queryset` or `get_object`: they narrow the scoped queryset in
`scope_queryset`, or, for deliberate cross-tenant reads, implement the greppable
`dangerously_get_queryset`.
"""

import json
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework import exceptions, viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from config.logging import tenant_id_var
from tenants import idempotency, ratelimit, rls
from tenants.access import ACTIVE_TENANT_SESSION_KEY, Actor, TenantContext, active_membership
from tenants.models import ApiKey, Tenant, TenantOwnedModel


def client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def tenant_context_for_request(request: Request) -> TenantContext:
    """The tenant comes from the credential (API key) or the session's active membership,
    never from the request body or URL."""
    ip, request_id = client_ip(request), getattr(request._request, "request_id", "")
    if isinstance(request.auth, ApiKey):
        tenant = request.auth.tenant
        actor = Actor.for_api_key(request.auth, ip_address=ip, request_id=request_id)
    elif request.user.is_authenticated:
        membership = active_membership(request.user, request.session.get(ACTIVE_TENANT_SESSION_KEY))
        if membership is None:
            raise exceptions.PermissionDenied(
                "You are not a member of any tenant.", code="no_membership"
            )
        tenant = membership.tenant
        actor = Actor.for_membership(membership, ip_address=ip, request_id=request_id)
    else:
        raise exceptions.NotAuthenticated()
    if tenant.status != Tenant.Status.ACTIVE:
        raise exceptions.PermissionDenied(
            "This tenant is suspended; contact the platform operator.", code="tenant_suspended"
        )
    return TenantContext(tenant=tenant, actor=actor)


class HasTenantPermission(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        assert isinstance(view, TenantScopedMixin)
        permission = view.required_permission(request)
        if permission is None:
            return True
        if not view.tenant_context.actor.can(permission):
            self.message = f"This action needs the {permission} permission."
            return False
        return True


class TenantRateThrottle(BaseThrottle):
    """Per API key or user, and per tenant; 429 with Retry-After when either is exceeded."""

    wait_seconds: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        from django.conf import settings

        assert isinstance(view, TenantScopedMixin)
        context = view.tenant_context
        actor = context.actor
        self.wait_seconds = ratelimit.hit(
            f"{actor.kind}:{actor.public_id}", settings.API_RATE_LIMIT_PER_PRINCIPAL
        ) or ratelimit.hit(
            f"tenant:{context.tenant.public_id}", context.tenant.api_requests_per_minute
        )
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds


class TenantScopedMixin(APIView):
    """Shared by viewsets and single-resource views: context, permissions, limits, idempotency."""

    permission_classes = [HasTenantPermission]
    throttle_classes = [TenantRateThrottle]
    # `<family>:read` for safe methods, `<family>:write` otherwise, unless an action overrides;
    # None: any valid credential of the tenant will do.
    permission_family: ClassVar[str | None]
    action_permissions: ClassVar[dict[str, str]] = {}
    # Response fields never kept for idempotent replays (secrets shown once); a replay has null.
    idempotency_withheld_fields: ClassVar[frozenset[str]] = frozenset()

    tenant_context: TenantContext

    @property
    def tenant(self) -> Tenant:
        return self.tenant_context.tenant

    @property
    def actor(self) -> Actor:
        return self.tenant_context.actor

    def required_permission(self, request: Request) -> str | None:
        action = getattr(self, "action", None)
        if action in self.action_permissions:
            return self.action_permissions[action]
        if self.permission_family is None:
            return None
        mode = "read" if request.method in SAFE_METHODS else "write"
        return f"{self.permission_family}:{mode}"

    def check_permissions(self, request: Request) -> None:
        self.tenant_context = tenant_context_for_request(request)
        tenant_id_var.set(self.tenant.public_id)
        super().check_permissions(request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # After authentication, permissions and rate limits, the handler runs in a transaction
        # that sees only the tenant's rows (and applies nothing if it fails).
        method = (request.method or "").lower()
        handler = getattr(self, method, None)
        if handler is None:
            return
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            self.post = partial(self._idempotent_post, handler)
        else:
            setattr(self, method, partial(self._in_tenant, handler))

    def _in_tenant(
        self, handler: Callable[..., Response], request: Request, *args: Any, **kwargs: Any
    ) -> Response:
        with rls.tenant_context(self.tenant):
            return handler(request, *args, **kwargs)

    def _idempotent_post(
        self, handler: Callable[..., Response], request: Request, *args: Any, **kwargs: Any
    ) -> Response:
        fingerprint = idempotency.request_fingerprint(
            request.method or "POST", request.get_full_path(), request._request.body
        )
        # The claim commits on its own, so a concurrent duplicate sees it at once.
        with rls.tenant_context(self.tenant):
            claim = idempotency.idempotency_claim(
                tenant=self.tenant,
                key=request.headers["Idempotency-Key"],
                method=request.method or "POST",
                path=request.path,
                fingerprint=fingerprint,
            )
        if isinstance(claim, idempotency.StoredResponse):
            headers = {**claim.headers, "Idempotent-Replayed": "true"}
            return Response(claim.body, status=claim.status, headers=headers)
        try:
            with rls.tenant_context(self.tenant):
                response = handler(request, *args, **kwargs)
                if 200 <= response.status_code < 300:
                    body = json.loads(JSONRenderer().render(response.data) or b"null")
                    if isinstance(body, dict):
                        body.update(dict.fromkeys(self.idempotency_withheld_fields & set(body)))
                    headers = {k: v for k, v in response.items() if k == "Location"}
                    idempotency.idempotency_complete(
                        claim, status=response.status_code, body=body, headers=headers
                    )
                    return response
        except BaseException:
            with rls.tenant_context(self.tenant):
                idempotency.idempotency_release(claim)
            raise
        with rls.tenant_context(self.tenant):
            idempotency.idempotency_release(claim)
        return response


class TenantViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    model: ClassVar[type[TenantOwnedModel]]
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[A-Za-z0-9_]+"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}, which would bypass tenant scoping. "
                    "Narrow the queryset in scope_queryset(), or implement "
                    "dangerously_get_queryset() for a deliberate cross-tenant read."
                )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.lookup_url_kwarg in kwargs:
            # The object in the URL is looked up before the body is read, so a missing (or
            # another tenant's) object is a 404 whatever the body holds.
            with rls.tenant_context(self.tenant):
                self.get_object()

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow the tenant's queryset (select_related, filters); it is already scoped."""
        return queryset

    def dangerously_get_queryset(self) -> QuerySet[Any] | None:
        """Return a queryset that is NOT scoped to the tenant. Nothing implements this today."""
        return None

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # A list's query filters narrow the list; they never hide the object a detail route
        # names (DRF would apply them to the lookup too).
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no tenant
            return self.model.all_tenants.none()
        unscoped = self.dangerously_get_queryset()
        if unscoped is not None:
            return unscoped
        return self.scope_queryset(self.model.objects.for_tenant(self.tenant))
