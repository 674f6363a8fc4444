"""Versions gain the tenant's own fields to extract after each call.

On SQLite, adding a column rebuilds the table, which would take the immutability triggers of
0002 with it (and trip the link tables' triggers mid-rebuild): they are dropped first and made
again for the new set of columns.
"""

from importlib import import_module
from typing import Any

from django.db import migrations, models

immutability = import_module("agents.migrations.0002_immutability_and_search")


def drop_sqlite_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for statement in immutability.sqlite_reverse():
            schema_editor.execute(statement, params=None)


def create_sqlite_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        immutability.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0003_agent_fallback_and_sip"),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, create_sqlite_triggers),
        migrations.AddField(
            model_name="agentversion",
            name="extraction_schema",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(create_sqlite_triggers, drop_sqlite_triggers),
    ]
