"""`make run` migrates a fresh SQLite database: every migration must apply there too, and the
database-level guards of published versions must survive them."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_migrations_apply_to_a_fresh_sqlite_database_and_keep_the_guards(
    tmp_path: Path,
) -> None:
    database = tmp_path / "fresh.sqlite3"
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
            "DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{database}",
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(database) as db:
        triggers = {
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert {
            "agents_agentversion_immutable",
            "agents_agentversion_undeletable",
            "agents_versiontool_frozen_insert",
        } <= triggers
        columns = [row[1] for row in db.execute("PRAGMA table_info(agents_agentversion)")]
        assert "extraction_schema" in columns
        trigger_sql = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'agents_agentversion_immutable'"
        ).fetchone()[0]
        # The guard compares every column, the new one included.
        assert '"extraction_schema"' in trigger_sql
