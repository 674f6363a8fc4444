"""The database itself refuses to change or delete a usage event."""

from typing import Any

from django.db import migrations

POSTGRES_FORWARD = [
    """CREATE FUNCTION billing_usageevent_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'usage events are append-only: record a reversal instead';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER billing_usageevent_append_only BEFORE UPDATE OR DELETE
    ON billing_usageevent FOR EACH ROW EXECUTE FUNCTION billing_usageevent_append_only()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER billing_usageevent_append_only ON billing_usageevent",
    "DROP FUNCTION billing_usageevent_append_only()",
]
SQLITE_FORWARD = [
    f"""CREATE TRIGGER billing_usageevent_no_{event.lower()} BEFORE {event} ON billing_usageevent
    BEGIN SELECT RAISE(ABORT, 'usage events are append-only: record a reversal instead'); END"""
    for event in ("UPDATE", "DELETE")
]
SQLITE_REVERSE = [
    f"DROP TRIGGER billing_usageevent_no_{event.lower()}" for event in ("UPDATE", "DELETE")
]


def forward(apps: Any, schema_editor: Any) -> None:
    postgres = schema_editor.connection.vendor == "postgresql"
    for statement in POSTGRES_FORWARD if postgres else SQLITE_FORWARD:
        schema_editor.execute(statement, params=None)


def reverse(apps: Any, schema_editor: Any) -> None:
    postgres = schema_editor.connection.vendor == "postgresql"
    for statement in POSTGRES_REVERSE if postgres else SQLITE_REVERSE:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_plans_invoices_stripe"),
    ]

    operations = [
        migrations.RunPython(forward, reverse),
    ]
