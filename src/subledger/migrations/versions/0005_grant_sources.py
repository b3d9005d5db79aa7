"""what a grant stands for

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("store_product_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("store_base_plan_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("store_transaction_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("store_original_transaction_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("environment", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_column("environment")
        batch_op.drop_column("store_original_transaction_id")
        batch_op.drop_column("store_transaction_id")
        batch_op.drop_column("store_base_plan_id")
        batch_op.drop_column("store_product_id")
        batch_op.drop_column("store")
