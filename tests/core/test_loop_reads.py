"""PostgreSQL reads awaited on the event loop give what the same statement gives through
SQLAlchemy, survive lost connections, and close with the server."""

import asyncio
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import bindparam, create_engine, event, literal_column, select
from sqlalchemy.exc import DataError
from support.rows import NOW, full_profile

from subledger.app import create_app
from subledger.apps import service as apps_service
from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.prepared import Prepared
from subledger.core.runtime import Runtime
from subledger.core.tables import apps, installations, profiles


@pytest.fixture
def db(postgresql_url):
    database = Database(Settings(database_url=postgresql_url).sqlalchemy_url)
    yield database
    database.dispose()


@pytest.fixture
def stored(db) -> dict:
    """A profile with a value in every column, and a device."""
    app_id = uuid.uuid4()
    profile = full_profile(app_id, "reader")
    with db.write() as conn:
        conn.execute(apps.insert().values(id=app_id, name="loop reads", created_at=NOW))
        conn.execute(profiles.insert(), profile)
        conn.execute(
            installations.insert(),
            {"profile_id": profile["id"], "device_id": "PHONE", "created_at": NOW, "updated_at": NOW},
        )
    return profile


NAME = Prepared(select(apps.c.name).where(apps.c.id == bindparam("id")))


async def _names(db: Database, app_id: uuid.UUID) -> list[dict]:
    try:
        return await db.loop_reads.rows(NAME, {"id": app_id})
    finally:
        await db.loop_reads.close()


def test_rows_come_back_as_connection_execute_returns_them(db, stored):
    queries = [
        select(profiles).where(profiles.c.customer_user_id == bindparam("key")),
        select(profiles.c.id, apps.c.config_version, installations.c.device_id.label("device.device_id"))
        .join(apps, apps.c.id == profiles.c.app_id)
        .outerjoin(installations, installations.c.profile_id == profiles.c.id)
        .where(profiles.c.customer_user_id == bindparam("key")),
    ]

    async def read_all():
        try:
            return [await db.loop_reads.rows(Prepared(query), {"key": "reader"}) for query in queries], [
                await db.loop_reads.first(Prepared(query), {"key": "nobody"}) for query in queries
            ]
        finally:
            await db.loop_reads.close()

    found, missing = asyncio.run(read_all())
    with db.read() as conn:
        assert found == [[dict(row._mapping) for row in conn.execute(query, {"key": "reader"})] for query in queries]
    assert found[0] == [stored]
    assert missing == [None, None]


def test_statement_listeners_see_the_statement(db, stored):
    seen = []
    listener = lambda conn, cursor, statement, *rest: seen.append((conn, statement))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert asyncio.run(_names(db, stored["app_id"])) == [{"name": "loop reads"}]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0][0] is None and seen[0][1].startswith("SELECT apps.name")


def test_a_driver_error_is_sqlalchemys(db):
    async def divide():
        try:
            await db.loop_reads.rows(Prepared(select(literal_column("1 / 0").label("x"))), {})
        finally:
            await db.loop_reads.close()

    with pytest.raises(DataError) as failed:
        asyncio.run(divide())
    assert not failed.value.connection_invalidated


def test_a_failed_read_gives_its_connection_back(db, stored):
    """More failed reads than the pool has connections, then one that answers: a failed
    read that kept its connection would leave the last waiting until it gives up."""
    failing = Prepared(select(literal_column("1 / 0").label("x")))

    async def scenario():
        try:
            for _ in range(db.loop_reads.connections + 1):
                with pytest.raises(DataError):
                    await db.loop_reads.rows(failing, {})
            return await db.loop_reads.rows(NAME, {"id": stored["app_id"]})
        finally:
            await db.loop_reads.close()

    assert asyncio.run(scenario()) == [{"name": "loop reads"}]


def test_reads_beyond_the_connections_wait_for_one_and_share_them(db):
    """Three times as many reads at once as the pool has connections: every one is answered,
    on no more backends than that."""
    backend = Prepared(select(literal_column("pg_backend_pid()").label("pid"), literal_column("pg_sleep(0.05)")))

    async def scenario():
        try:
            reads = [db.loop_reads.first(backend, {}) for _ in range(3 * db.loop_reads.connections)]
            return [row["pid"] for row in await asyncio.gather(*reads)]
        finally:
            await db.loop_reads.close()

    pids = asyncio.run(scenario())
    assert len(pids) == 3 * db.loop_reads.connections
    assert 1 <= len(set(pids)) <= db.loop_reads.connections


def test_a_read_meeting_lost_connections_is_tried_again_on_new_ones(db, stored):
    async def scenario():
        try:
            assert await db.loop_reads.rows(NAME, {"id": stored["app_id"]}) == [{"name": "loop reads"}]
            # What a restart of the database does to every connection of the pool.
            with db.read() as conn:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            return await db.loop_reads.rows(NAME, {"id": stored["app_id"]})
        finally:
            await db.loop_reads.close()

    assert asyncio.run(scenario()) == [{"name": "loop reads"}]


def test_the_server_closes_its_read_connections_when_it_stops(postgresql_url, clock, tmp_path):
    settings = Settings(database_url=postgresql_url, data_dir=tmp_path, serve_worker="off")
    runtime = Runtime(settings=settings, db=Database(settings.sqlalchemy_url), clock=clock)
    api_key = apps_service.create_app(runtime.db, "closing", clock.now())["secret_api_key"]
    observer = create_engine(runtime.db.url)

    def others() -> int:
        with observer.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar()

    try:
        runtime.db.engine.dispose()
        before = others()
        with TestClient(create_app(runtime)) as client:
            headers = {"Authorization": f"Api-Key {api_key}", "adapty-customer-user-id": "nobody"}
            assert client.get("/api/v2/server-side-api/profile/", headers=headers).status_code == 404
            assert others() > before
        runtime.db.engine.dispose()  # the threads' connections: what is left is the loop's
        for _ in range(50):  # a backend leaves pg_stat_activity a moment after its client goes
            if others() == before:
                break
            time.sleep(0.1)
        assert others() == before
    finally:
        observer.dispose()
        runtime.db.dispose()
