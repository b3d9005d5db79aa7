"""The migrations build exactly the schema the code declares, and go down and up again."""

import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from subledger.core.db import HEAD_REVISION, Database
from subledger.core.tables import metadata, store_configs


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def test_the_head_revision_the_code_checks_for_is_the_newest_migration(db):
    with db.engine.connect() as conn:
        assert ScriptDirectory.from_config(db.alembic_config(conn)).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_the_code(db):
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_downgrade_to_nothing_and_upgrade_again(db):
    with db.engine.begin() as conn:
        command.downgrade(db.alembic_config(conn), "base")
    assert db.schema_revision()[0] is None
    db.migrate()
    current, head = db.schema_revision()
    assert current == head


def test_a_stripe_key_moves_into_the_store_settings_and_back(db):
    """0008 moved the sealed Stripe key from ``apps`` into ``store_configs`` (and back down)."""
    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()))
    app_id = uuid.uuid4()
    with db.engine.begin() as conn:
        command.downgrade(db.alembic_config(conn), "0007")
        conn.execute(apps.insert().values(id=app_id, name="a", created_at=datetime(2025, 1, 1)))
        conn.execute(sa.text("UPDATE apps SET stripe_secret_key = 'sealed-key'"))
        command.upgrade(db.alembic_config(conn), "0008")
        moved = conn.execute(sa.select(store_configs.c.store, store_configs.c.secrets)).all()
        assert moved == [("stripe", {"secret_key": "sealed-key"})]
        command.downgrade(db.alembic_config(conn), "0007")
        assert conn.execute(sa.text("SELECT stripe_secret_key FROM apps")).scalar() == "sealed-key"
        command.upgrade(db.alembic_config(conn), "head")
