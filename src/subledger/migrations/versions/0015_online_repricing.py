"""online repricing

Revision ID: 0015
Revises: 0014

New exchange rates are applied profile by profile while writes go on: each profile
records the generation of rates its USD figures were computed at, and the ledger's
pricing keeps the rates themselves (those of the generation before while a repricing
is under way), where it kept only their digest.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


# Plain ALTER TABLE: a batch operation would copy the profiles table on SQLite, and
# dropping the old copy would cascade to every row that refers to it.


def upgrade() -> None:
    op.add_column("profiles", sa.Column("rates_generation", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("ledger_pricing", sa.Column("rates", sa.JSON(), nullable=True))
    op.add_column("ledger_pricing", sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("ledger_pricing", sa.Column("previous_rates", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_pricing", "previous_rates")
    op.drop_column("ledger_pricing", "generation")
    op.drop_column("ledger_pricing", "rates")
    op.drop_column("profiles", "rates_generation")
