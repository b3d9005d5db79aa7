"""drop the ledger's index by app and purchase date

Revision ID: 0034
Revises: 0033

No query reads the ledger by purchase date any more (analytics reads rollups, and each profile's
ledger by profile), and the export pages by profile: the index was 8% of an embedded database's
size, and one more copy of every transaction to write.
"""

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_transactions_app_id_purchased_at", table_name="transactions")


def downgrade() -> None:
    op.create_index("ix_transactions_app_id_purchased_at", "transactions", ["app_id", "purchased_at"])
