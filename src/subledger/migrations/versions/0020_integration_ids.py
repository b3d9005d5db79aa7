"""profiles.integration_ids

Revision ID: 0020
Revises: 0019

The third-party ids (AppsFlyer, Firebase, Mixpanel...) a profile carries, set through the
integration identifiers endpoint. Added in place: recreating ``profiles`` on SQLite would
cascade-delete their ledgers.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profiles", sa.Column("integration_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("profiles", "integration_ids")
