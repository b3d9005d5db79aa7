"""the Export Analytics API's rate limit buckets

Revision ID: 0029
Revises: 0028

Each app's token bucket for ``/api/v1/client-api/``, shared by every server process.
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_api_rate_buckets",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_client_api_rate_buckets_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_client_api_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("client_api_rate_buckets")
