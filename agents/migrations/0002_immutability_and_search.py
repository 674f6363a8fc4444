"""The database refuses to change published agent versions and prompt revisions, and indexes
knowledge chunks for full-text search on PostgreSQL.

Drafts change freely. A published version may only move to archived (status and archived_at);
an archived one never changes; neither can be deleted, nor can their tool and knowledge-base
links. Prompt revisions never change.
"""

from typing import Any

from django.db import migrations

LINK_TABLES = ("agents_versiontool", "agents_versionknowledgebase")

POSTGRES_FORWARD = [
    """
    CREATE FUNCTION agents_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% rows never change', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END;
    $$""",
    """
    CREATE TRIGGER agents_promptrevision_immutable BEFORE UPDATE ON agents_promptrevision
        FOR EACH ROW EXECUTE FUNCTION agents_refuse_update()""",
    """
    CREATE FUNCTION agents_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.status <> 'draft' THEN
                RAISE EXCEPTION 'version % is %: only drafts can be deleted', OLD.public_id, OLD.status
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END IF;
        IF OLD.status = 'draft' THEN
            RETURN NEW;
        END IF;
        IF OLD.status = 'published' AND NEW.status = 'archived'
           AND (to_jsonb(NEW) - 'status' - 'archived_at') = (to_jsonb(OLD) - 'status' - 'archived_at') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'version % is % and cannot change', OLD.public_id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$""",
    """
    CREATE TRIGGER agents_agentversion_immutable BEFORE UPDATE OR DELETE ON agents_agentversion
        FOR EACH ROW EXECUTE FUNCTION agents_version_immutable()""",
    """
    CREATE FUNCTION agents_version_links_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        version_status text;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT status INTO version_status FROM agents_agentversion WHERE id = NEW.version_id;
        ELSE
            SELECT status INTO version_status FROM agents_agentversion WHERE id = OLD.version_id;
        END IF;
        IF version_status IS NOT NULL AND version_status <> 'draft' THEN
            RAISE EXCEPTION 'the links of a % version cannot change', version_status
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END;
    $$""",
    *[
        f"""CREATE TRIGGER {table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION agents_version_links_frozen()"""
        for table in LINK_TABLES
    ],
    "CREATE INDEX agents_chunk_search ON agents_chunk USING GIN (search_vector)",
]

POSTGRES_REVERSE = [
    "DROP INDEX agents_chunk_search",
    *[f"DROP TRIGGER {table}_frozen ON {table}" for table in LINK_TABLES],
    "DROP FUNCTION agents_version_links_frozen()",
    "DROP TRIGGER agents_agentversion_immutable ON agents_agentversion",
    "DROP FUNCTION agents_version_immutable()",
    "DROP TRIGGER agents_promptrevision_immutable ON agents_promptrevision",
    "DROP FUNCTION agents_refuse_update()",
]


def sqlite_forward(version_columns: list[str]) -> list[str]:
    unchanged = " AND ".join(
        f'NEW."{c}" IS OLD."{c}"' for c in version_columns if c not in ("status", "archived_at")
    )
    statements = [
        """CREATE TRIGGER agents_promptrevision_immutable BEFORE UPDATE ON agents_promptrevision
           BEGIN SELECT RAISE(ABORT, 'agents_promptrevision rows never change'); END""",
        f"""CREATE TRIGGER agents_agentversion_immutable BEFORE UPDATE ON agents_agentversion
           WHEN OLD.status <> 'draft' AND NOT (
               OLD.status = 'published' AND NEW.status = 'archived' AND {unchanged})
           BEGIN SELECT RAISE(ABORT, 'a published or archived version cannot change'); END""",
        """CREATE TRIGGER agents_agentversion_undeletable BEFORE DELETE ON agents_agentversion
           WHEN OLD.status <> 'draft'
           BEGIN SELECT RAISE(ABORT, 'only draft versions can be deleted'); END""",
    ]
    for table in LINK_TABLES:
        for event, row in (("INSERT", "NEW"), ("DELETE", "OLD"), ("UPDATE", "OLD")):
            statements.append(
                f"""CREATE TRIGGER {table}_frozen_{event.lower()} BEFORE {event} ON {table}
                WHEN (SELECT status FROM agents_agentversion WHERE id = {row}.version_id) <> 'draft'
                BEGIN SELECT RAISE(ABORT, 'the links of a published version cannot change'); END"""
            )
    return statements


def sqlite_reverse() -> list[str]:
    names = [
        "agents_promptrevision_immutable",
        "agents_agentversion_immutable",
        "agents_agentversion_undeletable",
    ]
    names += [f"{t}_frozen_{e}" for t in LINK_TABLES for e in ("insert", "delete", "update")]
    return [f"DROP TRIGGER {name}" for name in names]


def forward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRES_FORWARD
    elif vendor == "sqlite":
        version = apps.get_model("agents", "AgentVersion")
        statements = sqlite_forward([f.column for f in version._meta.concrete_fields])
    else:
        statements = []
    for statement in statements:
        schema_editor.execute(statement, params=None)


def reverse(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRES_REVERSE, "sqlite": sqlite_reverse()}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
