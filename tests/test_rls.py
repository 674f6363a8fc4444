"""The second wall: PostgreSQL row-level security holds where the code's own scoping does not.

The suite connects as the application's role (tests/conftest.py), so these tests see what
production sees: `rls_enforced` lifts the test thread's bypass for test code too.
"""

import logging
import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import QuerySet
from django.test import Client

from agents.models import Agent
from calls.models import Call
from tenants import rls
from tenants.models import ApiKey, AuditEvent, TenantManager, TenantOwnedModel
from tests import factories
from tests.conftest import TenantWorld, key_client, verified_login


def test_every_tenant_owned_table_is_forced_under_both_policies(db: None) -> None:
    tables = [model._meta.db_table for model in rls.tenant_owned_models()]
    assert "calls_call" in tables and "tenants_apikey" in tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
            "AND relrowsecurity AND relforcerowsecurity",
            [tables],
        )
        secured = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT tablename, array_agg(policyname::text ORDER BY policyname) FROM pg_policies "
            "WHERE tablename = ANY(%s) GROUP BY tablename",
            [tables],
        )
        policies = dict(cursor.fetchall())
        # Nothing is left for the installer to do: a new tenant model gets the same at migrate.
        assert rls.install_statements(cursor) == []
    assert set(tables) - secured == set()
    assert {t for t in tables if policies.get(t) != ["tenant_bypass", "tenant_isolation"]} == set()


def test_the_application_role_is_bound_by_row_level_security(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        user, superuser, bypasses = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables "
            "WHERE tableowner = current_user AND schemaname = 'public'"
        )
        owned = cursor.fetchone()[0]
    assert (user, superuser, bypasses, owned) == (settings.DATABASE_APP_ROLE, False, False, 0)


def test_without_a_tenant_nothing_is_visible_or_writable(
    world: TenantWorld, rls_enforced: None
) -> None:
    assert Call.all_tenants.count() == 0
    assert ApiKey.all_tenants.count() == 0
    with pytest.raises(Exception, match="row-level security"), transaction.atomic():
        Agent.all_tenants.create(tenant=world.tenant, name="Sneaky")


def test_a_tenant_context_sees_only_its_rows_and_cannot_write_another_tenants(
    world: TenantWorld, other_world: TenantWorld, rls_enforced: None
) -> None:
    with rls.tenant_context(world.tenant):
        assert {c.tenant_id for c in Call.all_tenants.all()} == {world.tenant.pk}
        assert Agent.all_tenants.filter(pk=other_world.agent.pk).count() == 0
        with pytest.raises(Exception, match="row-level security"), transaction.atomic():
            Agent.all_tenants.create(tenant=other_world.tenant, name="Planted")
        # A nested scope gets its own tenant, and the enclosing one comes back after it.
        with rls.tenant_context(other_world.tenant):
            assert set(Agent.all_tenants.values_list("tenant_id", flat=True)) == {
                other_world.tenant.pk
            }
        assert set(Agent.all_tenants.values_list("tenant_id", flat=True)) == {world.tenant.pk}


def test_an_api_list_whose_scoping_filter_is_removed_still_shows_only_its_tenant(
    world: TenantWorld, other_world: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unscoped(manager: TenantManager[Any], tenant: Any) -> QuerySet[Any]:
        return super(TenantManager, manager).get_queryset()  # the first wall, gone

    monkeypatch.setattr(TenantManager, "for_tenant", unscoped)
    client = key_client(world.api_key)
    for path, mine in (
        ("/v1/agents", world.agent.public_id),
        ("/v1/calls", world.call.public_id),
        ("/v1/tools", world.tool.public_id),
    ):
        response = client.get(path)
        assert response.status_code == 200, response.content
        ids = {item["id"] for item in response.json()["results"]}
        assert mine in ids
        assert ids.isdisjoint(
            {other_world.agent.public_id, other_world.call.public_id, other_world.tool.public_id}
        )
    # The console reads through the same database wall.
    page = verified_login(Client(), world.owner.user).get("/agents/")
    assert world.agent.name.encode() in page.content
    assert other_world.agent.name.encode() not in page.content


def test_a_pooled_connection_carries_nothing_after_a_tenant_request(
    world: TenantWorld, transactional_db: None
) -> None:
    """Production pools connections; a connection handed on after tenant A's request must not
    let its next user see tenant A."""
    database = connections["default"]
    options = database.settings_dict["OPTIONS"]
    options["pool"] = {"min_size": 1, "max_size": 1}
    seen: dict[str, Any] = {}

    def request_as_tenant_a() -> None:
        response = key_client(world.api_key).get("/v1/agents")
        seen["status"] = response.status_code
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            seen["first"] = cursor.fetchone()[0]
        connection.close()  # back to the pool

    def next_user() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_backend_pid(), current_setting(%s, true), current_setting(%s, true)",
                [rls.TENANT_SETTING, rls.BYPASS_SETTING],
            )
            seen["second"], seen["tenant"], seen["bypass"] = cursor.fetchone()
        seen["agents"] = Agent.all_tenants.count()
        connection.close()

    try:
        database.close_pool()
        for work in (request_as_tenant_a, next_user):
            thread = threading.Thread(target=work)  # threads of their own: no test bypass
            thread.start()
            thread.join()
    finally:
        database.close_pool()
        options.pop("pool")
    assert seen["status"] == 200
    assert seen["second"] == seen["first"]  # the very same server connection
    assert (seen["tenant"] or "", seen["bypass"] or "", seen["agents"]) == ("", "", 0)


def test_a_foreign_key_to_another_tenants_row_is_refused(
    world: TenantWorld, other_world: TenantWorld
) -> None:
    for model, field in rls.same_tenant_keys():
        assert issubclass(field.related_model, TenantOwnedModel), (model, field)
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        Call.all_tenants.filter(pk=world.call.pk).update(agent=other_world.agent)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        Call.all_tenants.filter(pk=world.call.pk).update(agent=world.agent)  # same tenant: fine


def test_every_foreign_key_between_tenant_tables_has_its_same_tenant_twin(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND conname LIKE %s",
            ["%same_tenant%"],
        )
        found = {(table, name) for table, name in cursor.fetchall()}
    keys = rls.same_tenant_keys()
    assert len(keys) > 20
    assert len(found) == len(keys)


def test_operators_in_the_admin_bypass_it_and_it_is_logged(
    world: TenantWorld, other_world: TenantWorld, caplog: pytest.LogCaptureFixture
) -> None:
    operator = factories.UserFactory(is_staff=True, is_superuser=True)
    client = verified_login(Client(), operator)
    with caplog.at_level(logging.INFO, logger="switchboard.rls"):
        page = client.get("/admin/agents/agent/")
    assert page.status_code == 200
    assert world.agent.name.encode() in page.content
    assert other_world.agent.name.encode() in page.content
    reasons = [r.reason for r in caplog.records if r.getMessage() == "row-level security bypassed"]
    assert f"admin: GET /admin/agents/agent/ by {operator.email}" in reasons


def test_an_audit_event_cannot_be_hidden_in_another_tenant(
    world: TenantWorld, other_world: TenantWorld, rls_enforced: None
) -> None:
    with rls.tenant_context(world.tenant):
        assert AuditEvent.all_tenants.exclude(tenant=world.tenant).count() == 0
        with pytest.raises(Exception, match="row-level security"), transaction.atomic():
            AuditEvent.all_tenants.create(
                tenant=other_world.tenant, action="x", target_type="t", target_id="t"
            )
