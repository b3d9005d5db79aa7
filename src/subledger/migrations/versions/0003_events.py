"""events outbox, webhooks, deliveries, expiries, app revenue settings

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

JSON = sa.JSON()

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("small_business", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("tax_rate", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "events",
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("customer_user_id", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_events_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_app_id_profile_id_sequence"), ["app_id", "profile_id", "sequence"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_app_id_sequence"), ["app_id", "sequence"], unique=False)

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("authorization_header", sa.String(length=2048), nullable=True),
        sa.Column("signing_secret", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_webhook_endpoints_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_app_id"), ["app_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_sequence", sa.BigInteger(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f("ck_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_sequence"],
            ["events.sequence"],
            name=op.f("fk_deliveries_event_sequence_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("event_sequence", "endpoint_id", name=op.f("uq_deliveries_event_sequence_endpoint_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_endpoint_id_profile_id_status_event_sequence"),
            ["endpoint_id", "profile_id", "status", "event_sequence"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "scheduled_expiries",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=255), nullable=False),
        sa.Column("store_original_transaction_id", sa.String(length=255), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_scheduled_expiries_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_scheduled_expiries_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "profile_id", "store", "store_original_transaction_id", name=op.f("pk_scheduled_expiries")
        ),
    )
    with op.batch_alter_table("scheduled_expiries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_expiries_fired_due_at"), ["fired", "due_at"], unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_attempts_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("tax_rate")
        batch_op.drop_column("small_business")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_delivery_id"))

    op.drop_table("delivery_attempts")
    with op.batch_alter_table("scheduled_expiries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_expiries_fired_due_at"))

    op.drop_table("scheduled_expiries")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_endpoint_id_profile_id_status_event_sequence"))

    op.drop_table("deliveries")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_app_id"))

    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_app_id_sequence"))
        batch_op.drop_index(batch_op.f("ix_events_app_id_profile_id_sequence"))

    op.drop_table("events")
