"""The migrations build exactly the schema the code declares, and go down and up again."""

import json
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from support.clock import wait_until
from support.database import database_for, db_snapshot
from support.purchases import subscription
from support.receiver import Receiver

from subledger.core.db import HEAD_REVISION
from subledger.core.tables import deliveries, delivery_attempts, metadata, profiles, store_configs, webhook_endpoints
from subledger.purchases import verification
from subledger.worker import DeliveryWorker


@pytest.fixture
def db(runtime):
    database = database_for(runtime.settings)
    yield database
    database.dispose()


def test_the_head_revision_the_code_checks_for_is_the_newest_migration(db):
    with db.engine.connect() as conn:
        assert ScriptDirectory.from_config(db.alembic_config(conn)).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_the_code(db):
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_columns_searched_by_prefix_compare_in_byte_order(db):
    """Alembic's comparison above leaves collations out. On PostgreSQL a database's linguistic
    collation would not keep a range of strings to those that start with a prefix."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite compares text in byte order")
    query = sa.text(
        "SELECT column_name, collation_name FROM information_schema.columns"
        " WHERE table_name = 'profiles' AND column_name IN ('customer_user_id', 'email') ORDER BY column_name"
    )
    with db.engine.connect() as conn:
        assert conn.execute(query).all() == [("customer_user_id", "C"), ("email", "C")]
        command.downgrade(db.alembic_config(conn), "0032")
        assert [collation for _, collation in conn.execute(query)] == [None, None]
        command.upgrade(db.alembic_config(conn), "head")
        conn.commit()


def test_downgrade_to_nothing_and_upgrade_again(db):
    with db.migrating() as conn:
        command.downgrade(db.alembic_config(conn), "base")
    assert db.schema_revision()[0] is None
    db.migrate()
    current, head = db.schema_revision()
    assert current == head


def test_a_stripe_key_moves_into_the_store_settings_and_back(db):
    """0008 moved the sealed Stripe key from ``apps`` into ``store_configs`` (and back down)."""
    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()))
    app_id = uuid.uuid4()
    with db.migrating() as conn:
        command.downgrade(db.alembic_config(conn), "0007")
        conn.execute(apps.insert().values(id=app_id, name="a", created_at=datetime(2025, 1, 1)))
        conn.execute(sa.text("UPDATE apps SET stripe_secret_key = 'sealed-key'"))
        command.upgrade(db.alembic_config(conn), "0008")
        moved = conn.execute(sa.select(store_configs.c.store, store_configs.c.secrets)).all()
        assert moved == [("stripe", {"secret_key": "sealed-key"})]
        command.downgrade(db.alembic_config(conn), "0007")
        assert conn.execute(sa.text("SELECT stripe_secret_key FROM apps")).scalar() == "sealed-key"
        command.upgrade(db.alembic_config(conn), "head")


def test_apps_made_before_the_default_access_level_get_it(db):
    """0017 gives every app the access level premium, once."""
    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()))
    levels = sa.table(
        "access_levels", sa.column("app_id", sa.Uuid()), sa.column("id"), sa.column("created_at", sa.DateTime())
    )
    older, newer = uuid.uuid4(), uuid.uuid4()
    with db.migrating() as conn:
        command.downgrade(db.alembic_config(conn), "0016")
        conn.execute(apps.insert().values(id=older, name="older", created_at=datetime(2025, 1, 1)))
        conn.execute(apps.insert().values(id=newer, name="newer", created_at=datetime(2025, 1, 2)))
        conn.execute(levels.insert().values(app_id=newer, id="premium", created_at=datetime(2025, 1, 2)))
        command.upgrade(db.alembic_config(conn), "0017")
        rows = conn.execute(sa.select(levels.c.app_id, levels.c.id)).all()
        assert sorted(rows) == sorted([(older, "premium"), (newer, "premium")])
        command.upgrade(db.alembic_config(conn), "head")


def test_levels_granted_before_get_their_ids_as_derivation_gives_them(api, runtime):
    """0018 fills in the ids that profiles derived before it lack, as ``verify`` derives them."""
    api.create("u")
    assert api.grant("u", access_level_id="premium").status_code == 200
    with runtime.db.migrating() as conn:
        (derived,) = conn.execute(sa.select(profiles.c.derived)).one()
        for level in derived["access_levels"]:
            level.update(store_product_id=None, store_transaction_id=None, store_original_transaction_id=None)
        conn.execute(sa.update(profiles).values(derived=derived))
        command.downgrade(runtime.db.alembic_config(conn), "0017")
        command.upgrade(runtime.db.alembic_config(conn), "head")
    assert list(verification.verify(runtime)) == []
    level = api.get("u").json()["data"]["access_levels"][0]
    assert level["store_product_id"] == "adapty_server_side_product" and level["store_transaction_id"]


def test_paywalls_get_the_state_their_placements_give_them(db):
    """0019: archived as they were, live when a placement shows them (directly or in an A/B test)."""
    paywalls = sa.table(
        "paywalls",
        *(sa.column(name, sa.Uuid()) for name in ("id", "app_id", "variation_id")),
        sa.column("name"),
        sa.column("product_ids", sa.JSON()),
        sa.column("remote_configs", sa.JSON()),
        sa.column("is_archived", sa.Boolean()),
        sa.column("created_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()))
    placements = sa.table(
        "placements",
        sa.column("app_id", sa.Uuid()),
        sa.column("id"),
        sa.column("targets", sa.JSON()),
        sa.column("created_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    ab_tests = sa.table(
        "ab_tests",
        sa.column("id", sa.Uuid()),
        sa.column("app_id", sa.Uuid()),
        sa.column("name"),
        sa.column("variations", sa.JSON()),
        sa.column("created_at", sa.DateTime()),
    )
    app_id, test_id, now = uuid.uuid4(), uuid.uuid4(), datetime(2025, 1, 1)
    ids = {name: uuid.uuid4() for name in ("placed", "tested", "archived", "idle")}
    with db.migrating() as conn:
        command.downgrade(db.alembic_config(conn), "0018")
        conn.execute(apps.insert().values(id=app_id, name="a", created_at=now))
        for name, paywall_id in ids.items():
            conn.execute(
                paywalls.insert().values(
                    id=paywall_id,
                    app_id=app_id,
                    variation_id=uuid.uuid4(),
                    name=name,
                    product_ids=[],
                    remote_configs={},
                    is_archived=name == "archived",
                    created_at=now,
                    updated_at=now,
                )
            )
        variations = [{"variation_id": "v", "paywall_id": str(ids["tested"]), "weight": 1}]
        conn.execute(
            ab_tests.insert().values(id=test_id, app_id=app_id, name="t", variations=variations, created_at=now)
        )
        targets = [{"audience_id": None, "paywall_id": str(ids["placed"]), "ab_test_id": None}]
        targets.append({"audience_id": None, "paywall_id": None, "ab_test_id": str(test_id)})
        conn.execute(placements.insert().values(app_id=app_id, id="p", targets=targets, created_at=now, updated_at=now))
        command.upgrade(db.alembic_config(conn), "0019")
        states = dict(conn.execute(sa.text("SELECT title, state FROM paywalls")).all())
        assert states == {"placed": "live", "tested": "live", "archived": "archived", "idle": "draft"}
        command.upgrade(db.alembic_config(conn), "head")


def test_rebuilding_the_webhook_tables_keeps_every_row_that_refers_to_them(api, runtime, clock):
    """0024 rebuilds ``webhook_endpoints`` and ``deliveries`` on SQLite; their deliveries and
    attempts stay (dropping the old tables would otherwise delete them by cascade)."""
    with Receiver(script=["ok", "fail"]) as receiver:
        assert (
            api.admin("POST", "/webhooks/", {"url": receiver.url, "event_types": ["profile_created"]}).status_code
            == 201
        )
        api.create("u")
        worker = DeliveryWorker(runtime, in_flight=1)
        try:
            wait_until(lambda: worker.run_once() == 0 and len(receiver.received) == 2, 10)
        finally:
            worker.close()

    def counts():
        with runtime.db.read() as conn:
            return [
                conn.scalar(sa.select(sa.func.count()).select_from(t))
                for t in (webhook_endpoints, deliveries, delivery_attempts)
            ]

    assert counts() == [1, 1, 1]
    with runtime.db.migrating() as conn:
        command.downgrade(runtime.db.alembic_config(conn), "0023")
    runtime.db.migrate()
    assert counts() == [1, 1, 1]
    [delivery] = api.admin("GET", "/deliveries/").json()["data"]
    assert delivery["status"] == "pending" and delivery["attempts"][0]["status_code"] == 500


def test_a_new_sqlite_database_has_8_kib_pages(db):
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's pages are its own")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 8192


def test_compact_storage_keeps_every_value(api, runtime):
    """0035 stores SQLite's UUIDs as 16 bytes and its moments as integer microseconds (down:
    as SQLAlchemy's text again), 0036 a profile's derived state compressed (down: as JSON); going
    down and up again gives back every row as it was."""
    api.product("monthly", "premium", "P1M")
    assert api.create("u", email="u@example.com").status_code == 200
    assert api.set_transaction("u", **subscription()).status_code == 200
    assert api.grant("u", access_level_id="premium", expires_at="2031-01-01T00:00:00.000001Z").status_code == 200
    before, profile = db_snapshot(runtime), api.get("u").json()["data"]
    stored = "SELECT typeof(id), typeof(profile_id), typeof(purchased_at), typeof(expires_at) FROM transactions"
    with runtime.db.migrating() as conn:
        command.downgrade(runtime.db.alembic_config(conn), "0034")
        if runtime.db.is_sqlite:
            assert set(conn.exec_driver_sql(stored)) == {("text", "text", "text", "text")}
            moment = conn.exec_driver_sql("SELECT expires_at FROM access_grants").scalar()
            assert moment == "2031-01-01 00:00:00.000001"  # as SQLAlchemy's DATETIME writes it
            derived = conn.exec_driver_sql("SELECT derived FROM profiles").scalar()
            assert json.loads(derived)["access_levels"][0]["access_level_id"] == "premium"
        command.upgrade(runtime.db.alembic_config(conn), "head")
        if runtime.db.is_sqlite:
            assert set(conn.exec_driver_sql(stored)) == {("blob", "blob", "integer", "integer")}
            assert conn.exec_driver_sql("SELECT typeof(derived) FROM profiles").scalar() == "blob"
    assert db_snapshot(runtime) == before
    assert {**api.get("u").json()["data"], "timestamp": None} == {**profile, "timestamp": None}
