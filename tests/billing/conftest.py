from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing import services
from calls import pipeline
from calls.models import Call
from tenants.models import Tenant
from tests import factories
from tests.calls.test_pipeline import finished_call
from tests.fakes.stripe import FakeStripe

WEBHOOK_SECRET = "whsec_switchboard_test"


@pytest.fixture(scope="session")
def running_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(running_stripe: FakeStripe, settings: Any) -> FakeStripe:
    """The product's Stripe SDK pointed at the fake, with its meter in place."""
    running_stripe.reset()
    settings.STRIPE_SECRET_KEY = running_stripe.api_key
    settings.STRIPE_API_BASE = running_stripe.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    running_stripe.add_meter("resolved_conversation")
    return running_stripe


@pytest.fixture(autouse=True)
def _internal_billing_unless_asked(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.OPENAI_API_KEY = ""


def aged_tenant(days: int = 40) -> Tenant:
    """A tenant created `days` ago, so its first billing period has ended."""
    return factories.TenantFactory(created_at=timezone.now() - timedelta(days=days))


def last_period(tenant: Tenant) -> services.Period:
    subscription = services.subscription_for(tenant)
    current = services.period_at(subscription, timezone.now())
    return services.period_at(subscription, current.start - timedelta(seconds=1))


def tagged_call(tenant: Tenant, *, ended_at: datetime, resolved: bool = True) -> Call:
    """A call that ended at `ended_at`, run through the after-call work (which bills it)."""
    turns = [
        ("agent", "Thanks for calling, how can I help?"),
        ("caller", "Where is my order?"),
        ("agent", "It arrives tomorrow." if resolved else "Let me transfer you to a person."),
        ("caller", "Great, thanks, bye" if resolved else "ok"),
    ]
    call = finished_call(
        tenant=tenant, turns=turns, started_at=ended_at - timedelta(minutes=2), ended_at=ended_at
    )
    if not resolved:
        Call.objects.for_tenant(tenant).filter(pk=call.pk).update(
            end_reason=Call.EndReason.TRANSFERRED
        )
    pipeline.process(tenant, [call.pk])
    call.refresh_from_db()
    return call
