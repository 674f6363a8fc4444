"""factory_boy factories, one per model (tests/test_factories.py checks none is missing)."""

import hashlib
from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from factory.django import DjangoModelFactory

from agents.models import (
    Agent,
    AgentVersion,
    CarrierAccount,
    Chunk,
    Document,
    Integration,
    KnowledgeBase,
    NumberPurchase,
    PhoneNumber,
    PromptRevision,
    PromptTemplate,
    Tool,
    TrafficAllocation,
    VersionKnowledgeBase,
    VersionTool,
)
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    Meter,
    MeterReport,
    Plan,
    Price,
    Reconciliation,
    StripeEvent,
    Subscription,
    UsageEvent,
)
from calls.models import Call, CallEvent, Erasure, Outcome, PostCallJob, RetentionCheckpoint
from tenants import keys
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
from tenants.roles import MATRIX, Role

PASSWORD = "correct horse battery staple"


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class TOTPDeviceFactory(DjangoModelFactory):
    class Meta:
        model = TOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "Authenticator app"
    confirmed = True


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


class InvitationFactory(DjangoModelFactory):
    class Meta:
        model = Invitation

    class Params:
        token = factory.Sequence(lambda n: f"invitation-token-{n}")

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.EDITOR
    token_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.token.encode()).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ApiKeyFactory(DjangoModelFactory):
    """An API key; the instance carries its plaintext as `.secret` (never stored)."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: sorted(MATRIX.key_scopes))
    secret = factory.LazyFunction(keys.generate_key)
    prefix = factory.LazyAttribute(lambda o: keys.display_prefix(o.secret))
    secret_hash = factory.LazyAttribute(lambda o: keys.hash_key(o.secret))

    @classmethod
    def _create(cls, model_class: type[ApiKey], *args: object, **kwargs: object) -> ApiKey:
        secret = kwargs.pop("secret")
        api_key = super()._create(model_class, *args, **kwargs)
        api_key.secret = secret
        return api_key


class AuditEventFactory(DjangoModelFactory):
    class Meta:
        model = AuditEvent

    tenant = factory.SubFactory(TenantFactory)
    actor_type = AuditEvent.ActorType.SYSTEM
    actor_label = "test"
    action = "tenant.update"
    target_type = "tenant"
    target_id = factory.LazyAttribute(lambda o: o.tenant.public_id)


class IdempotencyKeyFactory(DjangoModelFactory):
    class Meta:
        model = IdempotencyKey

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"idem-{n}")
    fingerprint = "0" * 64
    method = "POST"
    path = "/v1/api-keys"
    response_status = 201
    response_body = factory.LazyFunction(dict)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


# --- Agents app -------------------------------------------------------------------------------


class TenantOwnedFactory(DjangoModelFactory):
    """Refuses to build a row that points at another tenant's row: test data must obey the
    same rule as the product."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        tenant = kwargs.get("tenant")
        for name, value in kwargs.items():
            owner = getattr(value, "tenant_id", None)
            if name != "tenant" and owner is not None and tenant is not None and owner != tenant.pk:
                raise ValueError(f"{model_class.__name__}.{name} belongs to another tenant")
        return super()._create(model_class, *args, **kwargs)


class PromptTemplateFactory(TenantOwnedFactory):
    class Meta:
        model = PromptTemplate

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Template {n}")


class PromptRevisionFactory(TenantOwnedFactory):
    class Meta:
        model = PromptRevision

    template = factory.SubFactory(PromptTemplateFactory)
    tenant = factory.LazyAttribute(lambda o: o.template.tenant)
    number = factory.Sequence(lambda n: n + 1)
    body = "You answer the phone for {{ company }}. Be brief and kind."
    variables = factory.LazyFunction(
        lambda: [{"name": "company", "type": "string", "default": "Acme"}]
    )


class IntegrationFactory(TenantOwnedFactory):
    class Meta:
        model = Integration

    tenant = factory.SubFactory(TenantFactory)
    kind = "bearer_token"
    name = factory.Sequence(lambda n: f"Integration {n}")
    secrets = factory.LazyFunction(lambda: {"token": "secret-token-value"})


class ToolFactory(TenantOwnedFactory):
    class Meta:
        model = Tool

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"lookup_{n}")
    description = "Look something up."
    kind = Tool.Kind.HTTP
    parameters = factory.LazyFunction(
        lambda: {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    )
    # A literal public address: saving it needs no DNS.
    config = factory.LazyFunction(
        lambda: {"method": "GET", "url": "https://93.184.216.34/items/{id}"}
    )


class KnowledgeBaseFactory(TenantOwnedFactory):
    class Meta:
        model = KnowledgeBase

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Knowledge {n}")


class DocumentFactory(TenantOwnedFactory):
    class Meta:
        model = Document

    knowledge_base = factory.SubFactory(KnowledgeBaseFactory)
    tenant = factory.LazyAttribute(lambda o: o.knowledge_base.tenant)
    title = factory.Sequence(lambda n: f"Document {n}")
    content_type = "text/plain"
    text = "Opening hours are nine to five on weekdays."
    size_bytes = factory.LazyAttribute(lambda o: len(o.text))
    chunk_count = 1


class ChunkFactory(TenantOwnedFactory):
    class Meta:
        model = Chunk

    document = factory.SubFactory(DocumentFactory)
    tenant = factory.LazyAttribute(lambda o: o.document.tenant)
    knowledge_base = factory.LazyAttribute(lambda o: o.document.knowledge_base)
    position = factory.Sequence(lambda n: n)
    text = factory.LazyAttribute(lambda o: o.document.text)


class AgentFactory(TenantOwnedFactory):
    class Meta:
        model = Agent

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")


class AgentVersionFactory(TenantOwnedFactory):
    """A complete draft: publishing it succeeds."""

    class Meta:
        model = AgentVersion

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant)
    number = factory.Sequence(lambda n: n + 1)
    prompt_revision = factory.LazyAttribute(
        lambda o: PromptRevisionFactory(template=PromptTemplateFactory(tenant=o.tenant))
    )


class VersionToolFactory(TenantOwnedFactory):
    class Meta:
        model = VersionTool

    version = factory.SubFactory(AgentVersionFactory)
    tenant = factory.LazyAttribute(lambda o: o.version.tenant)
    tool = factory.LazyAttribute(lambda o: ToolFactory(tenant=o.tenant))


class VersionKnowledgeBaseFactory(TenantOwnedFactory):
    class Meta:
        model = VersionKnowledgeBase

    version = factory.SubFactory(AgentVersionFactory)
    tenant = factory.LazyAttribute(lambda o: o.version.tenant)
    knowledge_base = factory.LazyAttribute(lambda o: KnowledgeBaseFactory(tenant=o.tenant))


class TrafficAllocationFactory(TenantOwnedFactory):
    class Meta:
        model = TrafficAllocation

    version = factory.SubFactory(AgentVersionFactory, status=AgentVersion.Status.PUBLISHED)
    tenant = factory.LazyAttribute(lambda o: o.version.tenant)
    agent = factory.LazyAttribute(lambda o: o.version.agent)
    weight = 100


class CarrierAccountFactory(TenantOwnedFactory):
    class Meta:
        model = CarrierAccount

    tenant = factory.SubFactory(TenantFactory)
    kind = CarrierAccount.Kind.SANDBOX
    name = factory.Sequence(lambda n: f"Carrier {n}")


class PhoneNumberFactory(TenantOwnedFactory):
    class Meta:
        model = PhoneNumber

    carrier_account = factory.SubFactory(CarrierAccountFactory)
    tenant = factory.LazyAttribute(lambda o: o.carrier_account.tenant)
    e164 = factory.Sequence(lambda n: f"+1{212 + n // 100}5550{100 + n % 100}")
    carrier_sid = factory.Sequence(lambda n: f"SB{n:032d}")
    capabilities = factory.LazyFunction(lambda: {"voice": True, "sms": False})


class NumberPurchaseFactory(TenantOwnedFactory):
    """A purchase that went through: the number was bought and recorded."""

    class Meta:
        model = NumberPurchase

    phone_number = factory.SubFactory(PhoneNumberFactory)
    tenant = factory.LazyAttribute(lambda o: o.phone_number.tenant)
    e164 = factory.LazyAttribute(lambda o: o.phone_number.e164)
    status = NumberPurchase.Status.BOUGHT


_ENDED = (Call.Status.COMPLETED, Call.Status.FAILED)


class CallFactory(TenantOwnedFactory):
    class Meta:
        model = Call

    phone_number = factory.SubFactory(PhoneNumberFactory)
    tenant = factory.LazyAttribute(lambda o: o.phone_number.tenant)
    agent = factory.LazyAttribute(lambda o: o.phone_number.agent)
    caller = "+15005550006"
    callee = factory.LazyAttribute(lambda o: o.phone_number.e164)
    carrier = Call.Carrier.SANDBOX
    carrier_call_id = factory.Sequence(lambda n: f"CA{n:032x}")
    # A call that has been answered and ended, as most stored calls are.
    status = Call.Status.COMPLETED
    started_at = factory.LazyFunction(timezone.now)
    version = factory.LazyAttribute(
        lambda o: (
            AgentVersion.all_tenants.filter(
                agent=o.agent, status=AgentVersion.Status.PUBLISHED
            ).first()
            if o.agent
            else None
        )
    )
    answered_at = factory.LazyAttribute(
        lambda o: None if o.status == Call.Status.RINGING else o.started_at + timedelta(seconds=1)
    )
    ended_at = factory.LazyAttribute(
        lambda o: (
            (o.answered_at or o.started_at) + timedelta(seconds=42) if o.status in _ENDED else None
        )
    )
    end_reason = factory.LazyAttribute(
        lambda o: Call.EndReason.CALLER_HANGUP if o.status in _ENDED else ""
    )
    duration_seconds = factory.LazyAttribute(lambda o: 42 if o.status in _ENDED else None)
    # Stored calls have been through the post-call pipeline's redaction.
    redacted_at = factory.LazyAttribute(lambda o: o.ended_at)


class CallEventFactory(TenantOwnedFactory):
    class Meta:
        model = CallEvent

    call = factory.SubFactory(CallFactory)
    tenant = factory.LazyAttribute(lambda o: o.call.tenant)
    sequence = factory.Sequence(lambda n: n + 1)
    offset_ms = 0
    kind = CallEvent.Kind.TRANSCRIPT
    payload = factory.LazyFunction(lambda: {"speaker": "caller", "text": "Hello"})


class OutcomeFactory(TenantOwnedFactory):
    class Meta:
        model = Outcome

    call = factory.SubFactory(CallFactory)
    tenant = factory.LazyAttribute(lambda o: o.call.tenant)
    label = "resolved"
    resolved = True
    confidence = 0.9
    rationale = "The caller's question was answered."
    source = Outcome.Source.RULE
    rule = "heuristic"


class PostCallJobFactory(TenantOwnedFactory):
    class Meta:
        model = PostCallJob

    call = factory.SubFactory(CallFactory)
    tenant = factory.LazyAttribute(lambda o: o.call.tenant)


class ErasureFactory(TenantOwnedFactory):
    """An erasure as calls.lifecycle.erasure_create records it: a hash, never the number."""

    class Meta:
        model = Erasure

    tenant = factory.SubFactory(TenantFactory)
    number_hash = factory.Sequence(lambda n: hashlib.sha256(f"number-{n}".encode()).hexdigest())
    requested_by_type = "user"
    requested_by_id = "usr_factory"
    requested_by_label = "owner@example.com"
    counts = factory.LazyFunction(lambda: {"calls": 1, "transcript_turns": 2, "recordings": 1})


class RetentionCheckpointFactory(TenantOwnedFactory):
    class Meta:
        model = RetentionCheckpoint

    tenant = factory.SubFactory(TenantFactory)
    last_run_at = factory.LazyFunction(timezone.now)


class UsageEventFactory(DjangoModelFactory):
    class Meta:
        model = UsageEvent

    tenant = factory.SubFactory(TenantFactory)
    meter = Meter.RESOLVED_CONVERSATION
    quantity = 1
    reference = factory.Sequence(lambda n: f"call_factory{n}")
    idempotency_key = factory.LazyAttribute(lambda o: f"{o.reference}#1")
    occurred_at = factory.LazyFunction(timezone.now)


class MeterReportFactory(DjangoModelFactory):
    class Meta:
        model = MeterReport

    event = factory.SubFactory(UsageEventFactory)
    tenant = factory.LazyAttribute(lambda o: o.event.tenant)
    customer = "cus_factory"


class PlanFactory(DjangoModelFactory):
    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = "usd"


class PriceFactory(DjangoModelFactory):
    class Meta:
        model = Price

    plan = factory.SubFactory(PlanFactory)
    meter = Meter.RESOLVED_CONVERSATION
    unit_amount = 70


class SubscriptionFactory(DjangoModelFactory):
    class Meta:
        model = Subscription

    tenant = factory.SubFactory(TenantFactory)
    plan = factory.SubFactory(PlanFactory)
    anchor = factory.LazyFunction(timezone.now)


def _pricing() -> dict[str, object]:
    price = {"mode": "flat", "unit_amount": 70, "included_quantity": 0, "tiers": []}
    return {
        "plan": "standard",
        "plan_name": "Standard",
        "currency": "usd",
        "monthly_minimum": 0,
        "discount_percent": 0,
        "trial": False,
        "prices": {Meter.RESOLVED_CONVERSATION.value: price},
    }


class InvoiceFactory(DjangoModelFactory):
    class Meta:
        model = Invoice

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: n + 1)
    status = Invoice.Status.FINALIZED
    period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    period_end = factory.LazyFunction(timezone.now)
    plan = factory.SubFactory(PlanFactory)
    currency = "usd"
    pricing = factory.LazyFunction(_pricing)
    quantities = factory.LazyFunction(lambda: {Meter.RESOLVED_CONVERSATION.value: 1})
    subtotal = total = 70


class InvoiceLineFactory(DjangoModelFactory):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    tenant = factory.LazyAttribute(lambda o: o.invoice.tenant)
    position = factory.Sequence(lambda n: n + 1)
    kind = InvoiceLine.Kind.USAGE
    meter = Meter.RESOLVED_CONVERSATION
    description = "Resolved conversations"
    quantity = 1
    unit_amount = 70
    amount = 70
    period_start = factory.LazyAttribute(lambda o: o.invoice.period_start)
    period_end = factory.LazyAttribute(lambda o: o.invoice.period_end)


class CreditNoteFactory(DjangoModelFactory):
    class Meta:
        model = CreditNote

    invoice = factory.SubFactory(InvoiceFactory)
    tenant = factory.LazyAttribute(lambda o: o.invoice.tenant)
    meter = Meter.RESOLVED_CONVERSATION
    quantity = 1
    amount = 70
    reason = "1 resolved conversation(s) reversed after invoicing"
    events_after = 0
    events_through = factory.Sequence(lambda n: n + 1)


class ReconciliationFactory(DjangoModelFactory):
    class Meta:
        model = Reconciliation

    tenant = factory.SubFactory(TenantFactory)
    meter = Meter.RESOLVED_CONVERSATION
    period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    period_end = factory.LazyFunction(timezone.now)
    ledger_quantity = stripe_quantity = 1


class StripeEventFactory(DjangoModelFactory):
    class Meta:
        model = StripeEvent

    event_id = factory.Sequence(lambda n: f"evt_factory{n}")
    type = "invoice.paid"
    created = 1767225600
    payload = factory.LazyFunction(lambda: {"object": "event", "data": {"object": {}}})


class WebhookEndpointFactory(TenantOwnedFactory):
    class Meta:
        model = WebhookEndpoint

    tenant = factory.SubFactory(TenantFactory)
    # An address literal: no DNS lookup, and public, so the SSRF guard lets it through.
    url = "https://93.184.215.14/hooks/switchboard"
    secrets = factory.LazyFunction(
        lambda: {"current": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
    )


class WebhookDeliveryFactory(TenantOwnedFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    tenant = factory.LazyAttribute(lambda o: o.endpoint.tenant)
    event_type = "call.completed"
    subject = factory.Sequence(lambda n: f"call_factory{n}")
    sequence = 1
    event_key = factory.LazyAttribute(lambda o: f"{o.subject}:{o.event_type}:completed")
    payload = factory.LazyAttribute(
        lambda o: {"type": o.event_type, "timestamp": "2026-01-01T00:00:00+00:00", "data": {}}
    )
    status = WebhookDelivery.Status.DELIVERED
    attempts = 1


def published_version(**kwargs: object) -> AgentVersion:
    """A published version whose instructions are rendered, as publishing would leave it."""
    version = AgentVersionFactory(**kwargs)
    from agents.services.agents import version_publish
    from tenants.access import Actor

    return version_publish(version=version, actor=Actor.system("tests"), activate=False)
