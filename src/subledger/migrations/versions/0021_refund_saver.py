"""Refund Saver: app settings, profile settings, consumption requests answered

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_saver_apps",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("default_preference", sa.String(length=16), nullable=False),
        sa.Column("consent_policy", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_refund_saver_apps_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_refund_saver_apps")),
    )
    op.create_table(
        "refund_saver_profiles",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("custom_preference", sa.String(length=16), nullable=True),
        sa.Column("consent", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_refund_saver_profiles_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_refund_saver_profiles")),
    )
    op.create_table(
        "consumption_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.String(length=255), nullable=False),
        sa.Column("store_transaction_id", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("refund_preference", sa.String(length=16), nullable=True),
        sa.Column("consumption_percentage", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_consumption_requests_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_consumption_requests_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consumption_requests")),
        sa.UniqueConstraint("app_id", "notification_id", name=op.f("uq_consumption_requests_app_id_notification_id")),
    )
    with op.batch_alter_table("consumption_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consumption_requests_app_id_store_transaction_id"),
            ["app_id", "store_transaction_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("consumption_requests")
    op.drop_table("refund_saver_profiles")
    op.drop_table("refund_saver_apps")
