"""The migrations build exactly the schema the code declares, and go down and up again."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from subledger.core.db import Database
from subledger.core.tables import metadata


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


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
