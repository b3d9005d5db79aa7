"""rate_buckets

Revision ID: 0013
Revises: 0012

Each rate-limited app's token bucket, in the database so that every server process
of it counts against one limit (each process used to keep a bucket of its own).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_rate_buckets_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
