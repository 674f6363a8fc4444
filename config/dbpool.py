"""The PostgreSQL connection pool's health check (settings.DATABASES, `OPTIONS["pool"]`).

Django hands the pool psycopg_pool's own check, an empty query on each connection about to be
handed out. When it fails, the pool tries the next idle connection after a pause that doubles
each time (one second, two, four...). After a server restart, a failover or a proxy reset
every idle connection is dead at once, so a request would go through them one by one and
wait out DATABASE_POOL_TIMEOUT. This check drains the pool at the first dead connection, so
the others are replaced at once and the requests after it get fresh ones
(tests/chaos/test_postgres_reset.py measures it)."""

import logging
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

logger = logging.getLogger(__name__)


def install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: give the process's pool this module's check (once)."""
    pool = getattr(connection, "pool", None)
    # Django passes its check to the pool's constructor and has no setting for another one.
    if isinstance(pool, ConnectionPool) and pool._check is ConnectionPool.check_connection:
        pool._check = drain_on_dead_connection(pool)


def drain_on_dead_connection(pool: ConnectionPool) -> Any:
    def check(conn: Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            logger.warning("a pooled database connection was dead; replacing the idle ones")
            pool.drain()
            raise

    return check
