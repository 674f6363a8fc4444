from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models.agents import Agent
from tenants.encryption import EncryptedJSONField
from tenants.ids import PublicIdField
from tenants.models import TenantOwnedModel


class CarrierAccount(TenantOwnedModel):
    """Where a tenant's numbers come from: its Twilio account, its OpenAI project's SIP trunk, or
    the offline sandbox."""

    class Kind(models.TextChoices):
        TWILIO = "twilio"
        SANDBOX = "sandbox"
        OPENAI_SIP = "openai_sip"

    public_id = PublicIdField("car")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="carrieraccount_public_id"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="carrieraccount_name"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="carrieraccount_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class PhoneNumber(TenantOwnedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RELEASED = "released"

    public_id = PublicIdField("num")
    e164 = models.CharField(max_length=16)
    carrier_account = models.ForeignKey(CarrierAccount, on_delete=models.PROTECT, related_name="+")
    carrier_sid = models.CharField(max_length=64)
    friendly_name = models.CharField(max_length=100, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="phonenumber_public_id"),
            # An incoming call is routed by the number dialled before any tenant is known, so
            # this lookup is global: one active owner per number across the platform.
            models.UniqueConstraint(
                fields=["e164"], condition=Q(status="active"), name="phonenumber_active_e164"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="phonenumber_recent")]

    def __str__(self) -> str:
        return self.e164

    @property
    def audit_label(self) -> str:
        return self.e164


class NumberPurchase(TenantOwnedModel):
    """A number bought from a carrier, or a purchase under way: what the tenant's daily purchase
    limit (`Tenant.max_number_purchases_per_day`, over any 24 hours) counts.

    The row is written, pending, before the carrier is asked, while the tenant's purchases are
    serialized, so concurrent purchases cannot get past the limit together. It is deleted when
    the carrier sells nothing (it refused, or the number was already the account's and was
    adopted), so a failed purchase costs no allowance; once the number is recorded it is
    `bought` and points at it.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        BOUGHT = "bought"

    e164 = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    phone_number = models.ForeignKey(
        PhoneNumber, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="numberpurchase_recent")]

    def __str__(self) -> str:
        return f"{self.e164} ({self.status})"
