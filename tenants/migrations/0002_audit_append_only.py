"""The audit log refuses UPDATE and DELETE in the database too, not only in Django code."""

from typing import Any

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION tenants_auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenants_auditevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER tenants_auditevent_append_only
    BEFORE UPDATE OR DELETE ON tenants_auditevent
    FOR EACH ROW EXECUTE FUNCTION tenants_auditevent_append_only();
"""
POSTGRES_REVERSE = """
DROP TRIGGER tenants_auditevent_append_only ON tenants_auditevent;
DROP FUNCTION tenants_auditevent_append_only();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER tenants_auditevent_no_update BEFORE UPDATE ON tenants_auditevent
       BEGIN SELECT RAISE(ABORT, 'tenants_auditevent is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER tenants_auditevent_no_delete BEFORE DELETE ON tenants_auditevent
       BEGIN SELECT RAISE(ABORT, 'tenants_auditevent is append-only (DELETE refused)'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER tenants_auditevent_no_update",
    "DROP TRIGGER tenants_auditevent_no_delete",
]


def forward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": [POSTGRES_FORWARD], "sqlite": SQLITE_FORWARD}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement, params=None)


def reverse(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": [POSTGRES_REVERSE], "sqlite": SQLITE_REVERSE}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
