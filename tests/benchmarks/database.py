"""The benchmarks' own database: dropped, created and migrated afresh for every run."""

import os
import sys
from urllib.parse import urlsplit


def recreate_database() -> None:
    """Re-create the database DATABASE_URL names (only one whose name ends in _bench), set
    Django up and migrate it."""
    import django
    import psycopg
    from psycopg import sql

    url = os.environ["DATABASE_URL"]
    name = urlsplit(url).path.lstrip("/")
    if not url.startswith("postgres") or not name.endswith("_bench"):
        sys.exit(f"Refusing to re-create {name!r}: the benchmark database's name ends in _bench.")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
