"""Tenancy primitives: scoped managers, the guarded viewset, tenant-first indexes."""

import pytest
from django.apps import apps
from django.db import models

from tenants.api.base import TenantViewSet
from tenants.models import ApiKey, Membership, TenantOwnedModel, UnscopedQueryError
from tests.factories import MembershipFactory, TenantFactory

TENANT_OWNED = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
# Looked up before the tenant is known (by a credential, by the number a call was placed to, or
# by the carrier's id in a webhook); tenant-first would make those lookups scans.
GLOBAL_LOOKUPS = {
    ("tenants.ApiKey", "secret_hash"),
    ("tenants.Invitation", "token_hash"),
    ("agents.PhoneNumber", "e164"),
    ("calls.Call", "carrier"),
}


def test_unscoped_queries_fail_loudly() -> None:
    with pytest.raises(UnscopedQueryError, match=r"for_tenant"):
        Membership.objects.filter(role="owner")
    with pytest.raises(UnscopedQueryError):
        Membership.objects.all()
    with pytest.raises(UnscopedQueryError, match="needs tenant="):
        ApiKey.objects.create(name="x")


@pytest.mark.django_db
def test_for_tenant_returns_only_that_tenants_rows() -> None:
    mine, theirs = TenantFactory(), TenantFactory()
    own = MembershipFactory(tenant=mine)
    MembershipFactory(tenant=theirs)
    assert list(Membership.objects.for_tenant(mine)) == [own]


def test_subclasses_cannot_bypass_scoping() -> None:
    with pytest.raises(TypeError, match="bypass tenant scoping"):

        class Sneaky(TenantViewSet):
            def get_queryset(self):
                return Membership.all_tenants.all()

    with pytest.raises(TypeError, match="bypass tenant scoping"):

        class Sneakier(TenantViewSet):
            def get_object(self):
                return None


@pytest.mark.parametrize("model", TENANT_OWNED, ids=lambda m: m._meta.label)
def test_tenant_owned_tables_index_tenant_first(model: type[models.Model]) -> None:
    tenant_field = model._meta.get_field("tenant")
    assert isinstance(tenant_field, models.ForeignKey)
    assert not tenant_field.db_index  # covered by the composite indexes below
    leading = []
    for index in model._meta.indexes:
        leading.append(index.fields[0].lstrip("-"))
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            first = constraint.fields[0] if constraint.fields else constraint.expressions[0]
            name = first if isinstance(first, str) else getattr(first, "name", "")
            if (model._meta.label, name) not in GLOBAL_LOOKUPS:
                leading.append(name)
    assert leading, "a tenant-owned table needs an index that starts with tenant"
    assert all(name == "tenant" for name in leading), leading
    for field in model._meta.fields:
        if field.unique and field.name != "id":
            assert (model._meta.label, field.name) in GLOBAL_LOOKUPS, field.name
