"""A database of its own for one benchmark run."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy

from subledger.config import Settings


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
