"""raw store notifications forwarded to a URL of the app's

Revision ID: 0027
Revises: 0026

An app may name, per store, a URL that receives every verified App Store or Google Play
notification as the store sent it (``forward_url`` in the store's settings). Each waits in
``store_forwards`` until delivered, retried as webhook deliveries are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_forwards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'refused', 'dead')", name=op.f("ck_store_forwards_status")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_store_forwards_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_forwards")),
    )
    with op.batch_alter_table("store_forwards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_store_forwards_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("store_forwards")
