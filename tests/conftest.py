"""Fixtures: every API test runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from SUBLEDGER_TEST_POSTGRES_URL (default: the server on
127.0.0.1:5432). A private database is created for the test session. When it
cannot be reached the PostgreSQL runs are skipped locally and fail under CI.
"""

import os
import shutil
import uuid

import pytest
import sqlalchemy
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from support import pgbouncer
from support.api import Api, new_app
from support.clock import FakeClock
from support.database import database_for

from subledger.app import create_app
from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.runtime import Runtime
from subledger.core.tables import metadata
from subledger.dashboard import service as dashboard_service

# The suite's webhook receivers listen on loopback: every Settings made in a test allows it (the
# SSRF tests turn it off for themselves).
os.environ["SUBLEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "1"
# Fixtures that tests of several features use, beside the ones here.
pytest_plugins = [
    "support.app_store",
    "support.currencies",
    "support.metrics",
    "support.paywalls",
    "support.play_store",
    "support.web",
]


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes():
    """Operators' passwords hashed by argon2 at its least cost in the tests that run in this
    process: at the production cost (about 0.2 s a hash or a check on two cores) each dashboard
    test spent half a second signing in. The servers the system tests start keep that cost."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dashboard_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


POSTGRES_ADMIN_URL = os.environ.get("SUBLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _psycopg_url(url: str) -> str:
    return Settings(database_url=url).sqlalchemy_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return str(path)


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    admin_url = _psycopg_url(POSTGRES_ADMIN_URL)
    name = f"subledger_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI and is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    url = sqlalchemy.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_cleaner(postgres_database):
    """A connection to empty the session's PostgreSQL database with, kept for the session."""
    # Pinged before each use: some tests end every backend of the database (a failover).
    engine = sqlalchemy.create_engine(postgres_database, pool_size=1, pool_pre_ping=True)
    yield engine
    engine.dispose()


# Every table emptied, dependents first, in one round trip. DELETE: on tables of a test's few rows,
# a tenth of TRUNCATE's time (which makes each table a new file).
EMPTY_EVERY_TABLE = "; ".join(f'DELETE FROM "{table.name}"' for table in reversed(metadata.sorted_tables))


@pytest.fixture
def postgresql_url(postgres_database, postgres_cleaner) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    with postgres_cleaner.begin() as conn:
        conn.exec_driver_sql(EMPTY_EVERY_TABLE)
    return postgres_database


@pytest.fixture(scope="session")
def postgres_pooler(postgres_database):
    """The session's PostgreSQL database through PgBouncer in transaction pooling mode."""
    if not pgbouncer.available():
        if os.environ.get("CI"):
            pytest.fail("PgBouncer is required under CI (.ci/run installs it)")
        pytest.skip("pgbouncer is not installed")
    with pgbouncer.transaction_pooler(postgres_database) as url:
        yield url


@pytest.fixture
def pooled_postgresql_url(postgresql_url, postgres_pooler) -> str:
    """``postgresql_url`` (emptied for this test) through the pooler."""
    return postgres_pooler


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    """A migrated SQLite file of this test's own."""
    path = tmp_path / "subledger.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_server_pool(postgres_database):
    """The session's PostgreSQL database through PgBouncer with as many server connections as a
    server process may use at once (``postgres_pooler``'s two show statements prepared on one
    connection meeting another)."""
    if not pgbouncer.available():
        pytest.fail("PgBouncer is required to run the tests through it")
    with pgbouncer.transaction_pooler(postgres_database, server_connections=40) as url:
        yield url


@pytest.fixture
def pgbouncer_url(postgresql_url, postgres_server_pool, monkeypatch) -> str:
    """The session's PostgreSQL database (emptied for this test) through PgBouncer, with the
    setting that goes with it."""
    monkeypatch.setenv("SUBLEDGER_DATABASE_TRANSACTION_POOLING", "1")
    return postgres_server_pool


# With SUBLEDGER_TEST_PGBOUNCER set (CI does, in a run of its own), every test on the database of
# ``database_url`` runs a third time: PostgreSQL through PgBouncer in transaction pooling mode.
ENGINES = ["sqlite", "postgresql", *(["pgbouncer"] if os.environ.get("SUBLEDGER_TEST_PGBOUNCER") else [])]


@pytest.fixture(params=ENGINES)
def database_url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(database_url, clock, tmp_path):
    settings = Settings(database_url=database_url, data_dir=tmp_path, serve_worker="off")
    db = database_for(settings)
    rt = Runtime(settings=settings, db=db, clock=clock)
    yield rt
    db.dispose()


@pytest.fixture
def client(runtime):
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


@pytest.fixture
def api(runtime, client) -> Api:
    return new_app(runtime, client)
