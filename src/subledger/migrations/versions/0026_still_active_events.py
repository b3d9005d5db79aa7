"""the "still active" events: per-app delays, and the checks they schedule

Revision ID: 0026
Revises: 0025

An app may ask for trial_active and subscription_active, the reference's synthetic events: some
days after a trial or a subscription starts, the event fires if it has not ended. Each start
schedules one check.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps", sa.Column("trial_active_after_days", sa.Integer(), nullable=True))
    op.add_column("apps", sa.Column("subscription_active_after_days", sa.Integer(), nullable=True))
    op.create_table(
        "scheduled_checks",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=255), nullable=False),
        sa.Column("store_original_transaction_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_scheduled_checks_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_scheduled_checks_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "profile_id", "store", "store_original_transaction_id", "event_type", name=op.f("pk_scheduled_checks")
        ),
    )
    with op.batch_alter_table("scheduled_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_checks_fired_due_at"), ["fired", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_table("scheduled_checks")
    op.drop_column("apps", "subscription_active_after_days")
    op.drop_column("apps", "trial_active_after_days")
