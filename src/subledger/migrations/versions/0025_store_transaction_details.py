"""what only a store's account of a transaction carries: Play's purchase token, pauses, deferrals

Revision ID: 0025
Revises: 0024

Webhook events carry a Play purchase's token (``play_store_purchase_token``), and a subscription
paused on Play, or whose renewal Play or Apple deferred, has its own event. Columns are added in
place.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transactions", sa.Column("store_purchase_token", sa.String(length=4096), nullable=True))
    op.add_column("transactions", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("transactions", sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("transactions", "deferred_at")
    op.drop_column("transactions", "paused_at")
    op.drop_column("transactions", "store_purchase_token")
