"""A tenant's retention periods: every member reads them, owners and admins change them through
`PATCH /v1/tenant` within 1..3650 days, and every change is audited."""

import pytest
from django.test import override_settings

from tenants.models import AuditEvent, Tenant
from tenants.roles import Role
from tests import factories as f
from tests.conftest import TenantWorld, key_client

pytestmark = pytest.mark.django_db

PERIODS = ("recording_retention_days", "transcript_retention_days", "webhook_body_retention_days")


@override_settings(
    TENANT_DEFAULT_RECORDING_RETENTION_DAYS=60,
    TENANT_DEFAULT_TRANSCRIPT_RETENTION_DAYS=200,
    TENANT_DEFAULT_WEBHOOK_BODY_RETENTION_DAYS=14,
)
def test_new_tenants_start_from_the_configured_defaults() -> None:
    tenant = f.TenantFactory()
    assert [getattr(tenant, name) for name in PERIODS] == [60, 200, 14]


def test_every_member_reads_the_periods(world: TenantWorld) -> None:
    body = world.session_client(Role.VIEWER).get("/v1/tenant").json()
    assert {name: body[name] for name in PERIODS} == {
        "recording_retention_days": 90,
        "transcript_retention_days": 365,
        "webhook_body_retention_days": 30,
    }


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_change_them_audited(world: TenantWorld, role: str) -> None:
    client = world.session_client(role)
    response = client.patch(
        "/v1/tenant",
        {"recording_retention_days": 7, "transcript_retention_days": 3650},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["recording_retention_days"], response.json()["name"]) == (
        7,
        world.tenant.name,
    )
    tenant = Tenant.objects.get(pk=world.tenant.pk)
    assert [getattr(tenant, name) for name in PERIODS] == [7, 3650, 30]
    audit = (
        AuditEvent.objects.for_tenant(world.tenant)
        .exclude(pk=world.audit_event.pk)
        .get(action="tenant.update")
    )
    assert audit.changes == {
        "recording_retention_days": [90, 7],
        "transcript_retention_days": [365, 3650],
    }


@pytest.mark.parametrize("days", [0, -1, 3651, "ninety", True, None])
def test_periods_outside_1_to_3650_days_are_refused(world: TenantWorld, days: object) -> None:
    response = world.client.patch(
        "/v1/tenant", {"webhook_body_retention_days": days}, format="json"
    )
    assert response.status_code == 400
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["webhook_body_retention_days"]
    assert Tenant.objects.get(pk=world.tenant.pk).webhook_body_retention_days == 30


@pytest.mark.parametrize("role", [Role.EDITOR, Role.FINANCE, Role.VIEWER])
def test_other_roles_cannot_change_them(world: TenantWorld, role: str) -> None:
    response = world.session_client(role).patch(
        "/v1/tenant", {"recording_retention_days": 1}, format="json"
    )
    assert response.status_code == 403
    assert Tenant.objects.get(pk=world.tenant.pk).recording_retention_days == 90


def test_a_key_needs_privacy_write_as_well_as_tenant_write(world: TenantWorld) -> None:
    renamer = key_client(f.ApiKeyFactory(tenant=world.tenant, scopes=["tenant:write"]))
    refused = renamer.patch("/v1/tenant", {"recording_retention_days": 1}, format="json")
    assert refused.status_code == 403
    assert "privacy:write" in refused.json()["detail"]
    assert renamer.patch("/v1/tenant", {"name": "Renamed"}, format="json").status_code == 200

    both = key_client(
        f.ApiKeyFactory(tenant=world.tenant, scopes=["tenant:write", "privacy:write"])
    )
    allowed = both.patch("/v1/tenant", {"recording_retention_days": 1}, format="json")
    assert allowed.status_code == 200
