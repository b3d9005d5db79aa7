"""the profile fields of the current contract

Revision ID: 0016
Revises: 0015

Profiles keep ``ip_v4_address``, ``store_account_token`` and ``att_status``; installations
keep ``app_build``, ``app_version`` and ``adapty_sdk_version``, and user agents up to 1,024
characters. Columns are added in place (recreating ``profiles`` on SQLite would cascade-delete
their ledgers); only ``installations``, which nothing references, is rebuilt there to widen a column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profiles", sa.Column("ip_v4_address", sa.String(length=45), nullable=True))
    op.add_column("profiles", sa.Column("store_account_token", sa.Uuid(), nullable=True))
    op.add_column("profiles", sa.Column("att_status", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.alter_column("user_agent", type_=sa.String(length=1024), existing_type=sa.String(length=255))
        batch_op.add_column(sa.Column("app_build", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("app_version", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("adapty_sdk_version", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_column("adapty_sdk_version")
        batch_op.drop_column("app_version")
        batch_op.drop_column("app_build")
        batch_op.alter_column("user_agent", type_=sa.String(length=255), existing_type=sa.String(length=1024))
    op.drop_column("profiles", "att_status")
    op.drop_column("profiles", "store_account_token")
    op.drop_column("profiles", "ip_v4_address")
