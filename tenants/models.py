from typing import Any, ClassVar, Generic, TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.encryption import EncryptedJSONField
from tenants.ids import PublicIdField
from tenants.roles import Role


def default_max_concurrent_calls() -> int:
    return settings.TENANT_DEFAULT_MAX_CONCURRENT_CALLS


def default_api_rate_limit() -> int:
    return settings.TENANT_DEFAULT_API_RATE_LIMIT


def default_max_agents() -> int:
    return settings.TENANT_DEFAULT_MAX_AGENTS


def default_max_phone_numbers() -> int:
    return settings.TENANT_DEFAULT_MAX_PHONE_NUMBERS


def default_max_document_bytes() -> int:
    return settings.TENANT_DEFAULT_MAX_DOCUMENT_BYTES


def default_max_outbound_calls_per_minute() -> int:
    return settings.TENANT_DEFAULT_MAX_OUTBOUND_CALLS_PER_MINUTE


def default_max_number_purchases_per_day() -> int:
    return settings.TENANT_DEFAULT_MAX_NUMBER_PURCHASES_PER_DAY


def default_recording_retention_days() -> int:
    return settings.TENANT_DEFAULT_RECORDING_RETENTION_DAYS


def default_transcript_retention_days() -> int:
    return settings.TENANT_DEFAULT_TRANSCRIPT_RETENTION_DAYS


def default_webhook_body_retention_days() -> int:
    return settings.TENANT_DEFAULT_WEBHOOK_BODY_RETENTION_DAYS


class Tenant(models.Model):
    """A customer account: everything else a business configures or produces belongs to one."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    public_id = PublicIdField("ten", unique=True)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    max_concurrent_calls = models.PositiveIntegerField(default=default_max_concurrent_calls)
    api_requests_per_minute = models.PositiveIntegerField(default=default_api_rate_limit)
    max_agents = models.PositiveIntegerField(default=default_max_agents)
    max_phone_numbers = models.PositiveIntegerField(default=default_max_phone_numbers)
    max_document_bytes = models.PositiveIntegerField(default=default_max_document_bytes)
    max_outbound_calls_per_minute = models.PositiveIntegerField(
        default=default_max_outbound_calls_per_minute
    )
    max_number_purchases_per_day = models.PositiveIntegerField(
        default=default_max_number_purchases_per_day
    )
    # How long personal data from calls is kept before the daily retention task removes it.
    recording_retention_days = models.PositiveIntegerField(default=default_recording_retention_days)
    transcript_retention_days = models.PositiveIntegerField(
        default=default_transcript_retention_days
    )
    webhook_body_retention_days = models.PositiveIntegerField(
        default=default_webhook_body_retention_days
    )
    # How long after a call a person may still overturn its outcome and change the bill.
    dispute_window_days = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def audit_label(self) -> str:
        return self.name


class UnscopedQueryError(TypeError):
    pass


M = TypeVar("M", bound=models.Model)


class TenantManager(models.Manager[M], Generic[M]):
    """`Model.objects` on tenant data: every query starts from `.for_tenant(tenant)`.

    A plain `Model.objects.filter(...)` raises, so a query that forgets its tenant fails in the
    first test that runs it. Work that is cross-tenant by design (operators, credential lookups
    before the tenant is known) says so with `Model.all_tenants`.
    """

    def get_queryset(self) -> models.QuerySet[M]:
        raise UnscopedQueryError(
            f"{self.model.__name__}.objects needs a tenant: use "
            f"{self.model.__name__}.objects.for_tenant(tenant), or "
            f"{self.model.__name__}.all_tenants for deliberate cross-tenant work"
        )

    def for_tenant(self, tenant: Tenant) -> models.QuerySet[M]:
        return super().get_queryset().filter(tenant=tenant)

    def none(self) -> models.QuerySet[M]:
        """An empty queryset cannot leak anything (schema generation and filters ask for one)."""
        return super().get_queryset().none()

    def create(self, **kwargs: Any) -> M:
        """Create a row; the tenant must be given explicitly."""
        if not isinstance(kwargs.get("tenant"), Tenant):
            raise UnscopedQueryError(f"{self.model.__name__}.objects.create() needs tenant=")
        return super().get_queryset().create(**kwargs)


class TenantOwnedModel(models.Model):
    """Base for every table that holds a tenant's data: a direct `tenant` foreign key.

    Its indexes and unique constraints start with `tenant` (tests/test_tenancy_layout.py checks).
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", db_index=False, editable=False
    )

    # Declared first, so it is Django's default manager (admin, forms, related managers use it).
    all_tenants: ClassVar[models.Manager[Any]] = models.Manager()
    objects: ClassVar[TenantManager[Any]] = TenantManager()

    class Meta:
        abstract = True


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> "User":
        if not email:
            raise ValueError("Users need an email address")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address, a password and a TOTP device."""

    public_id = PublicIdField("usr", unique=True)
    # Unique as typed, and (by the constraint below) regardless of case.
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Platform operator: may use the admin once verified with TOTP."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email


class Membership(TenantOwnedModel):
    public_id = PublicIdField("mem")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="membership_public_id"),
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_user"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="membership_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} as {self.role}"

    @property
    def audit_label(self) -> str:
        return self.user.email


class Invitation(TenantOwnedModel):
    """An offer to join a tenant with a role, sent by email; accepting it creates a Membership."""

    public_id = PublicIdField("ivt")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    # Only a hash of the token in the emailed link is stored; it is looked up before the tenant
    # is known, so this index is global.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="invitation_public_id"),
            models.UniqueConstraint("tenant", Lower("email"), name="invitation_one_per_email"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="invitation_recent")]

    def __str__(self) -> str:
        return f"{self.email} as {self.role}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def audit_label(self) -> str:
        return self.email


class ApiKey(TenantOwnedModel):
    """A credential for the API. Only the SHA-256 of the secret is stored."""

    public_id = PublicIdField("key")
    name = models.CharField(max_length=100)
    # The first characters of the key, shown in lists so people can tell keys apart.
    prefix = models.CharField(max_length=16)
    # Looked up from the presented key before the tenant is known, so this index is global.
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="apikey_public_id"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def audit_label(self) -> str:
        return self.name

    def is_usable(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class WebhookEndpoint(TenantOwnedModel):
    """A URL of the tenant's that receives signed event notifications (Standard Webhooks)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    public_id = PublicIdField("whk")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Event types sent here; empty means all of them.
    event_types = models.JSONField(default=list, blank=True)
    # {"current": "whsec_…", "previous": "whsec_…", "previous_until": ISO time}: during a rotation
    # every message is signed with both secrets until `previous_until`.
    secrets = EncryptedJSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    disabled_reason = models.CharField(max_length=255, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="webhookendpoint_public_id"
            ),
        ]

    def __str__(self) -> str:
        return self.url

    @property
    def audit_label(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(TenantOwnedModel):
    """One event for one endpoint, and how sending it went. Its public id is the `webhook-id`
    the receiver sees on every attempt, so a receiver can drop repeats."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # every attempt failed, or the endpoint was disabled

    public_id = PublicIdField("msg")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)
    # What the event is about (a call's public id); deliveries about one subject go out in order.
    subject = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    # Unique per endpoint: emitting the same event twice creates one delivery.
    event_key = models.CharField(max_length=200)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="webhookdelivery_public_id"
            ),
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "event_key"], name="webhookdelivery_once"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "next_attempt_at"], name="webhook_due"),
            models.Index(
                fields=["tenant", "endpoint", "subject", "sequence"], name="webhook_order"
            ),
            models.Index(fields=["tenant", "-created_at"], name="webhook_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.public_id}"

    @property
    def audit_label(self) -> str:
        return f"{self.event_type} to {self.endpoint.url}"


class AppendOnlyQuerySet(models.QuerySet[M], Generic[M]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AuditEvent(TenantOwnedModel):
    """Who changed what, when and from where. Rows are never updated or deleted.

    The actor and target are snapshots (public id and a label), not foreign keys, so deleting a
    user or an object later changes nothing here.
    """

    class ActorType(models.TextChoices):
        USER = "user"
        API_KEY = "api_key"
        SYSTEM = "system"

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", db_index=False, editable=False
    )
    public_id = PublicIdField("aud")
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=40, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40)
    target_label = models.CharField(max_length=254, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    all_tenants: ClassVar[models.Manager[Any]] = AppendOnlyQuerySet.as_manager()
    objects: ClassVar[TenantManager[Any]] = TenantManager.from_queryset(AppendOnlyQuerySet)()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="auditevent_public_id"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_recent"),
            models.Index(fields=["tenant", "action", "-created_at"], name="audit_by_action"),
            models.Index(fields=["tenant", "actor_id", "-created_at"], name="audit_by_actor"),
            models.Index(fields=["tenant", "target_id", "-created_at"], name="audit_by_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("AuditEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("AuditEvent rows are append-only")


class IdempotencyKey(TenantOwnedModel):
    """The outcome of a POST sent with an `Idempotency-Key` header, kept to replay on retries."""

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    # Null while the first request is still running.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_key_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"], name="idempotency_expiry")]

    def __str__(self) -> str:
        return self.key
