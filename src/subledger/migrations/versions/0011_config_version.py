"""apps.config_version

Revision ID: 0011
Revises: 0010

A counter that every change to an app's configuration (products, access levels,
webhook endpoints, settings, exchange rates) moves on, so that server processes
can keep that configuration in memory and know when to read it again. The column
is added in place: recreating ``apps`` on SQLite would cascade-delete every app's data.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps", sa.Column("config_version", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    op.drop_column("apps", "config_version")
