import pytest
from django.test import override_settings

from tenants.models import Tenant
from tests.conftest import TenantWorld, key_client
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@override_settings(API_RATE_LIMIT_PER_PRINCIPAL=3)
def test_one_key_over_its_limit_gets_429_with_retry_after(world: TenantWorld) -> None:
    client = world.client
    statuses = [client.get("/v1/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/v1/")
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another key of the same tenant has its own allowance.
    assert key_client(ApiKeyFactory(tenant=world.tenant)).get("/v1/").status_code == 200


def test_the_tenant_limit_spans_all_its_keys(world: TenantWorld, other_world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(api_requests_per_minute=4)
    clients = [key_client(ApiKeyFactory(tenant=world.tenant)) for _ in range(3)]
    statuses = [clients[i % 3].get("/v1/").status_code for i in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    # Other tenants are unaffected.
    assert other_world.client.get("/v1/").status_code == 200


@override_settings(API_RATE_LIMIT_PER_PRINCIPAL=2)
def test_signed_in_users_are_limited_too(world: TenantWorld) -> None:
    client = world.session_client()
    assert [client.get("/v1/members").status_code for _ in range(3)] == [200, 200, 429]
