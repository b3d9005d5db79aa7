"""paywall views found by profile

Revision ID: 0030
Revises: 0029

The Export Analytics API reads each page of profiles' first paywall views.
"""

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_paywall_views_profile_id_viewed_at"), "paywall_views", ["profile_id", "viewed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_paywall_views_profile_id_viewed_at"), table_name="paywall_views")
