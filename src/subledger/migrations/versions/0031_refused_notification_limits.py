"""refused store requests: counted per app, throttled per address

Revision ID: 0031
Revises: 0030

Store notification URLs take no key: what fails verification is throttled per app and per
client address, the audit log keeps a bounded number per app, and each app counts them all.
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_refused_notifications_app_id_remote_address_received_at"),
        "refused_notifications",
        ["app_id", "remote_address", "received_at"],
    )
    op.create_table(
        "refused_counts",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("not_kept", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_refused_counts_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_refused_counts")),
    )


def downgrade() -> None:
    op.drop_table("refused_counts")
    op.drop_index(
        op.f("ix_refused_notifications_app_id_remote_address_received_at"), table_name="refused_notifications"
    )
