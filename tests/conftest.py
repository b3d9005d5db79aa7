"""Fixtures: every API test runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from SUBLEDGER_TEST_POSTGRES_URL (default: the server on
127.0.0.1:5432). A private database is created for the test session. When it
cannot be reached the PostgreSQL runs are skipped locally and fail under CI.
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pgbouncer
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from subledger.app import create_app
from subledger.apps import service as apps_service
from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.runtime import Runtime
from subledger.core.tables import metadata

# The suite's webhook receivers listen on loopback: every Settings made in a test allows it (the
# SSRF tests turn it off for themselves).
os.environ["SUBLEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "1"
POSTGRES_ADMIN_URL = os.environ.get("SUBLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BASE = "/api/v2/server-side-api"


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime = datetime(2025, 1, 9, 12, 0, tzinfo=UTC)):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


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


@pytest.fixture
def postgresql_url(postgres_database) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    engine = sqlalchemy.create_engine(postgres_database)
    with engine.begin() as conn:
        # DELETE, dependents first: on tables of a test's few rows, a tenth of TRUNCATE's time
        # (which makes each table a new file).
        for table in reversed(metadata.sorted_tables):
            conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
    engine.dispose()
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


def database_for(settings: Settings) -> Database:
    """A server process's database as the settings have it (no prepared statements behind a pooler)."""
    return Database(settings.sqlalchemy_url, prepared_statements=not settings.database_transaction_pooling)


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


@contextmanager
def another_server_process(runtime: Runtime) -> Iterator[TestClient]:
    """A client of a second server process on the same database (and clock): its own
    engine, and everything it keeps in memory its own."""
    db = database_for(runtime.settings)
    try:
        with TestClient(create_app(Runtime(settings=runtime.settings, db=db, clock=runtime.clock))) as client:
            yield client
    finally:
        db.dispose()


class Api:
    """A client for one app: sends its key and addresses profiles by customer_user_id."""

    def __init__(self, client: TestClient, secret: str, app_id: str, public: str | None = None):
        self.client = client
        self.secret = secret
        self.app_id = app_id
        self.public = public  # the app's public key, for the Web API

    def headers(self, customer_user_id: str | None = None, **extra) -> dict[str, str]:
        headers = {"Authorization": f"Api-Key {self.secret}"}
        if customer_user_id is not None:
            headers["adapty-customer-user-id"] = customer_user_id
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, customer_user_id: str | None = None, json=None, headers=None, **kw):
        return self.client.request(
            method, BASE + path, json=json, headers={**self.headers(customer_user_id), **(headers or {})}, **kw
        )

    def create(self, customer_user_id: str, **fields):
        return self.request("POST", "/profile/", customer_user_id, json=fields)

    def get(self, customer_user_id: str | None = None, **kw):
        return self.request("GET", "/profile/", customer_user_id, **kw)

    def patch(self, customer_user_id: str, **fields):
        return self.request("PATCH", "/profile/", customer_user_id, json=fields)

    def delete(self, customer_user_id: str):
        return self.request("DELETE", "/profile/", customer_user_id)

    def set_transaction(self, customer_user_id: str, **transaction):
        return self.request("POST", "/purchase/set/transaction/", customer_user_id, json=transaction)

    def grant(self, customer_user_id: str, **body):
        return self.request("POST", "/purchase/profile/grant/access-level/", customer_user_id, json=body)

    def revoke(self, customer_user_id: str, **body):
        return self.request("POST", "/purchase/profile/revoke/access-level/", customer_user_id, json=body)

    def admin(self, method: str, path: str, json=None):
        return self.client.request(method, "/api/admin/v1" + path, json=json, headers=self.headers())

    def access_level(self, level_id: str) -> None:
        assert self.admin("POST", "/access-levels/", {"access_level_id": level_id}).status_code == 201

    def product(
        self, store_product_id: str, access_level_id: str | None, period: str = "P1M", store: str = "app_store", **extra
    ) -> dict:
        body = {
            "store": store,
            "store_product_id": store_product_id,
            "access_level_id": access_level_id,
            "period": period,
            **extra,
        }
        response = self.admin("POST", "/products/", body)
        assert response.status_code == 201, response.text
        return response.json()["data"]


def new_app(runtime: Runtime, client: TestClient, name: str = "Test App") -> Api:
    created = apps_service.create_app(runtime.db, name, runtime.clock.now())
    return Api(client, created["secret_api_key"], created["app_id"], created["public_api_key"])


@pytest.fixture
def api(runtime, client) -> Api:
    return new_app(runtime, client)


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# Rate limits count every request, refused ones too: their buckets are left out of snapshots.
RATE_BUCKETS = frozenset({"rate_buckets", "currency_rate_buckets", "client_api_rate_buckets"})


# The audit log of refused store requests, and their counts: what a refused request does write.
AUDIT_LOG = frozenset({"refused_notifications", "refused_counts"})


def db_snapshot(runtime: Runtime) -> dict[str, list]:
    """Every row of every table but the rate limits' buckets, to show that a rejected request
    changed nothing."""
    with runtime.db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(table.select())), key=repr)
            for table in metadata.sorted_tables
            if table.name not in RATE_BUCKETS
        }


def all_but_the_audit_log(runtime: Runtime) -> dict[str, list]:
    """``db_snapshot`` without the audit log of refused store requests."""
    return {name: rows for name, rows in db_snapshot(runtime).items() if name not in AUDIT_LOG}
