"""Operator admin for tenancy. Tenant-owned rows are read-only here except through services,
so every operator change is validated and audited like any other."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice

from tenants import services
from tenants.access import Actor
from tenants.errors import ServiceError
from tenants.models import (
    ApiKey,
    AuditEvent,
    IdempotencyKey,
    Invitation,
    Membership,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)


def operator(request: HttpRequest) -> Actor:
    """The verified staff user behind an admin request, acting as the platform."""
    user = request.user
    assert isinstance(user, User)
    return Actor(
        kind="system",
        public_id=user.public_id,
        label=f"operator {user.email}",
        user=user,
        ip_address=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "public_id", "status", "max_concurrent_calls", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "public_id"]
    readonly_fields = ["public_id", "slug", "created_at", "updated_at"]
    fields = [
        "name",
        "public_id",
        "slug",
        "status",
        "max_concurrent_calls",
        "api_requests_per_minute",
        "max_agents",
        "max_phone_numbers",
        "max_document_bytes",
        "max_outbound_calls_per_minute",
        "max_number_purchases_per_day",
        "dispute_window_days",
        "created_at",
        "updated_at",
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tenants are suspended, not deleted

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        actor = operator(request)
        try:
            if change:
                fields = {name: form.cleaned_data[name] for name in form.changed_data}
                services.tenant_update(tenant=obj, actor=actor, **fields)
            else:
                created = services.tenant_create(actor=actor, name=obj.name)
                obj.pk, obj.public_id, obj.slug = created.pk, created.public_id, created.slug
                changes = {name: form.cleaned_data[name] for name in form.changed_data}
                changes.pop("name", None)
                if changes:
                    services.tenant_update(tenant=created, actor=actor, **changes)
        except ServiceError as exc:
            messages.error(request, exc.detail)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "public_id", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name", "public_id"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["public_id", "email", "name", "password"]}),
        (
            "Access",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})
    ]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["public_id", "user__email", "tenant__name"]
    list_select_related = ["tenant", "user"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "email", "role", "created_at", "expires_at"]
    search_fields = ["public_id", "email", "tenant__name"]
    list_select_related = ["tenant"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected invitations")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        for invitation in queryset.select_related("tenant"):
            services.invitation_revoke(invitation=invitation, actor=operator(request))
        messages.success(request, "Invitations revoked.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "tenant",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    search_fields = ["public_id", "prefix", "name", "tenant__name"]
    list_select_related = ["tenant"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.select_related("tenant"):
            services.api_key_revoke(api_key=api_key, actor=operator(request))
        messages.success(request, "Keys revoked.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "action", "actor_label", "target_type", "target_id"]
    list_filter = ["action", "actor_type", "target_type"]
    search_fields = ["public_id", "actor_id", "actor_label", "target_id", "request_id"]
    list_select_related = ["tenant"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = [
        "key",
        "tenant",
        "method",
        "path",
        "response_status",
        "created_at",
        "expires_at",
    ]
    search_fields = ["key", "path"]
    list_select_related = ["tenant"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "url", "status", "disabled_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "url", "tenant__name"]
    list_select_related = ["tenant"]
    exclude = ["secrets"]  # signing secrets are never shown again


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "tenant",
        "event_type",
        "subject",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    search_fields = ["public_id", "subject", "tenant__name"]
    list_select_related = ["tenant"]


# Recovery codes are a member's secret: django-otp's own admin would list them in clear text to
# every operator. An operator who needs to reset someone's second factor uses `enroll_totp`.
if admin.site.is_registered(StaticDevice):
    admin.site.unregister(StaticDevice)
