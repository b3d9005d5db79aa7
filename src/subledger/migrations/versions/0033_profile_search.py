"""the dashboard's search by prefix of customer_user_id and email

Revision ID: 0033
Revises: 0032

A prefix is searched as a range of an index, which needs the columns in byte order: PostgreSQL
compares them in the "C" collation (a database's linguistic default would not keep a range to the
strings that start with the prefix; equality, and so the unique constraint, is the same in both).
SQLite compares in byte order already. Emails get an index of their own.
"""

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

SEARCHED = ("customer_user_id", "email")


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in SEARCHED:
        op.alter_column("profiles", column, type_=sa.String(255, collation=collation), existing_nullable=True)


def upgrade() -> None:
    _collate("C")
    op.create_index("ix_profiles_app_id_email", "profiles", ["app_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_profiles_app_id_email", table_name="profiles")
    _collate("default")
