"""sign_in_buckets

Revision ID: 0014
Revises: 0013

Failed dashboard sign-ins counted in the database, so that every server process
counts against one limit (each process used to count its own).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_buckets",
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("email", "address", name=op.f("pk_sign_in_buckets")),
    )
    with op.batch_alter_table("sign_in_buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_buckets_full_at"), ["full_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_buckets_full_at"))

    op.drop_table("sign_in_buckets")
