"""A database of its own for one benchmark run."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy

from subledger.config import Settings
from subledger.core.db import Database


@contextmanager
def scratch_database(engine: str, postgres_url: str) -> Iterator[str | None]:
    """For PostgreSQL, yields the URL of a new database on the server of ``postgres_url``,
    dropped afterwards; for SQLite, None (the caller's data directory holds the file)."""
    if engine != "postgresql":
        yield None
        return
    server = Settings(database_url=postgres_url).sqlalchemy_url
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"subledger_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def settle_statistics(db: Database) -> None:
    """On PostgreSQL, what autovacuum does within a minute of a bulk load: VACUUM ANALYZE.

    Until then the statistics are an empty table's, and the plans PostgreSQL keeps for prepared
    statements walk all of an app's profiles to find one by customer_user_id (2 ms of the
    database's CPU for each POST profile); counts without a visibility map read every row."""
    if db.is_sqlite:
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
