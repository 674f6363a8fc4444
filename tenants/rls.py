"""The second wall: PostgreSQL row-level security on every tenant-owned table.

The first wall is in the code (`Model.objects.for_tenant`, guarded viewsets, the isolation
matrix). This one is in the database: a tenant-owned table shows and accepts only the rows of
the tenant named by the transaction-local setting `app.tenant_id`, so a query that forgot its
filter still cannot reach another tenant. With no tenant set, nothing is visible.

Every entry point names its tenant with `tenant_context` (requests, API keys, Celery tasks,
call bridges). Work that is cross-tenant by design (credential lookups before the tenant is
known, operator tools, scheduled sweeps) says so with `rls_bypass(reason)`, which is logged.
Both set the value with `SET LOCAL` semantics inside a transaction, so nothing outlives the
transaction and a pooled connection carries nothing to its next user.

On SQLite (the embedded default) both are no-ops: only the first wall stands there.
"""

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from psycopg import sql

logger = logging.getLogger("switchboard.rls")

TENANT_SETTING = "app.tenant_id"
BYPASS_SETTING = "app.rls_bypass"


def _enforced() -> bool:
    return connection.vendor == "postgresql"


def _swap(tenant_id: str, bypass: str) -> tuple[str, str]:
    """Set both transaction-local settings in one round trip; return what they were."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(current_setting(%s, true), ''),"
            " coalesce(current_setting(%s, true), ''),"
            " set_config(%s, %s, true), set_config(%s, %s, true)",
            [TENANT_SETTING, BYPASS_SETTING, TENANT_SETTING, tenant_id, BYPASS_SETTING, bypass],
        )
        previous_tenant, previous_bypass, *_ = cursor.fetchone()
    return str(previous_tenant), str(previous_bypass)


@contextmanager
def _scoped(tenant_id: str, bypass: str) -> Iterator[None]:
    if not _enforced():
        yield
        return
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        previous = _swap(tenant_id, bypass)
        yield
        # The transaction's end clears local settings; a savepoint's release keeps them, so an
        # enclosing scope gets its own back. (A rollback restores them by itself.)
        if not outermost and not connection.needs_rollback and previous != (tenant_id, bypass):
            _swap(*previous)


@contextmanager
def tenant_context(tenant: object) -> Iterator[None]:
    """Run the block in a transaction that sees and writes only `tenant`'s rows.

    `tenant` is a Tenant or its primary key. Nested scopes restore the enclosing one on exit.
    """
    tenant_id = getattr(tenant, "pk", tenant)
    if not isinstance(tenant_id, int):
        raise TypeError(f"tenant_context needs a Tenant or its id, not {tenant!r}")
    with _scoped(str(tenant_id), "off"):
        yield


@contextmanager
def rls_bypass(reason: str) -> Iterator[None]:
    """Run the block in a transaction that sees every tenant's rows, and log why.

    For operator work that is cross-tenant by design: the admin, billing period closes,
    management commands, scheduled sweeps that find due work before acting tenant by tenant.
    """
    if _enforced():  # (SQLite has nothing to bypass)
        logger.info("row-level security bypassed", extra={"reason": reason})
    with _scoped("", "on"):
        yield


@contextmanager
def tenant_lookup(what: str) -> Iterator[None]:
    """`rls_bypass` for finding which tenant a credential, number or call belongs to, before
    the tenant is known (every API request does one); logged at debug level only. Read the one
    row you need inside it, then work in `tenant_context`."""
    if _enforced():
        logger.debug("tenant lookup across tenants", extra={"reason": what})
    with _scoped("", "on"):
        yield


# --- Installation: runs after every `migrate`, as the tables' owner ---------------------------

POLICIES = {
    "tenant_isolation": (
        f"tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::bigint"
    ),
    "tenant_bypass": f"current_setting('{BYPASS_SETTING}', true) = 'on'",
}


def tenant_owned_models() -> list[type[Any]]:
    from tenants.models import TenantOwnedModel

    return [
        model
        for model in django_apps.get_models()
        if issubclass(model, TenantOwnedModel) and model._meta.managed
    ]


def same_tenant_keys() -> list[tuple[type[Any], Any]]:
    """Every foreign key from a tenant-owned table to another: (model, field)."""
    owned = set(tenant_owned_models())
    return [
        (model, field)
        for model in owned
        for field in model._meta.concrete_fields
        if field.is_relation and field.name != "tenant" and field.related_model in owned
    ]


def _name(*parts: str) -> str:
    """A constraint name within PostgreSQL's 63 characters, stable for the same parts."""
    name = "_".join(parts)
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54]}_{digest}"


def install_statements(cursor: Any) -> list[str]:
    """What is missing for the second wall on this database, as SQL (empty when complete)."""
    statements = []
    cursor.execute(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    )
    tables = {name: (enabled, forced) for name, enabled, forced in cursor.fetchall()}
    cursor.execute("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'")
    policies = set(cursor.fetchall())
    cursor.execute("SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace")
    constraints = {row[0] for row in cursor.fetchall()}
    for model in tenant_owned_models():
        table = model._meta.db_table
        if table not in tables:
            continue  # a model whose migration has not run yet on this database
        enabled, forced = tables[table]
        if not enabled:
            statements.append(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        if not forced:
            statements.append(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        for policy, condition in POLICIES.items():
            if (table, policy) not in policies:
                statements.append(
                    f'CREATE POLICY {policy} ON "{table}" USING ({condition}) '
                    f"WITH CHECK ({condition})"
                )
        # The target of composite foreign keys: (tenant_id, id) is unique as id alone is.
        unique = _name(table, "tenant_id_id_key")
        if unique not in constraints:
            statements.append(
                f'ALTER TABLE "{table}" ADD CONSTRAINT {unique} UNIQUE (tenant_id, id)'
            )
    for model, field in same_tenant_keys():
        table, target = model._meta.db_table, field.related_model._meta.db_table
        if table not in tables or target not in tables:
            continue
        name = _name(table, field.column, "same_tenant")
        if name not in constraints:
            # Like Django's own keys, checked at commit; a NULL key is not checked at all.
            statements.append(
                f'ALTER TABLE "{table}" ADD CONSTRAINT {name} FOREIGN KEY '
                f'(tenant_id, "{field.column}") REFERENCES "{target}" (tenant_id, id) '
                "DEFERRABLE INITIALLY DEFERRED"
            )
    return statements


def app_role_statements(cursor: Any, role: str, password: str) -> list[str]:
    """Create the application's role when it is missing, and grant it rows, never tables."""
    cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    found = cursor.fetchone()
    if found and found[0]:
        raise ImproperlyConfigured(
            f"The application role {role!r} is a superuser or bypasses row-level security; "
            "it must be neither (see docs/security.md)."
        )
    cursor.execute("SELECT current_database()")
    names: dict[str, sql.Composable] = {
        "role": sql.Identifier(role),
        "db": sql.Identifier(cursor.fetchone()[0]),
    }
    statements = (
        []
        if found
        else [
            # Parallel test databases migrate at once and may race to create the same role.
            "DO $$ BEGIN CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ]
    )
    statements += [
        "GRANT CONNECT ON DATABASE {db} TO {role}",
        "GRANT USAGE ON SCHEMA public TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]
    if password:
        statements.append("ALTER ROLE {role} PASSWORD {password}")
        names["password"] = sql.Literal(password)
    raw = cursor.connection  # psycopg's own connection, to quote names and values
    return [sql.SQL(statement).format(**names).as_string(raw) for statement in statements]


def install(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: secure every tenant-owned table and grant the application role its rows.

    Runs as whoever migrates, which must be the tables' owner. Idempotent: when everything is
    in place it only reads the catalog (it also runs after test flushes, as the app role).
    """
    db = connections[using]
    if db.vendor != "postgresql":
        return
    role = settings.DATABASE_APP_ROLE
    with db.cursor() as cursor:
        statements = install_statements(cursor)
        cursor.execute("SELECT current_user")
        migrating_as = cursor.fetchone()[0]
        if role and migrating_as != role:
            statements += app_role_statements(cursor, role, settings.DATABASE_APP_PASSWORD)
        for statement in statements:
            cursor.execute(statement)
