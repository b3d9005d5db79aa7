"""ledger_pricing

Revision ID: 0012
Revises: 0011

Which exchange rates the ledger's USD figures were computed at. It starts empty:
``subledger migrate`` then recomputes every profile's total revenue once (loading
rates used to leave them at the rates before) and records the rates in force.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_pricing",
        sa.Column("rates_digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("rates_digest", name=op.f("pk_ledger_pricing")),
    )


def downgrade() -> None:
    op.drop_table("ledger_pricing")
