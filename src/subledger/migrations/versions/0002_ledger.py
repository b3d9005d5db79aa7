"""catalog, ledger and derived profile state

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

JSON = sa.JSON()

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("usd_per_unit", sa.String(length=40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_exchange_rates")),
    )
    op.create_table(
        "access_levels",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_access_levels_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "id", name=op.f("pk_access_levels")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=255), nullable=False),
        sa.Column("store_product_id", sa.String(length=255), nullable=False),
        sa.Column("store_base_plan_id", sa.String(length=255), nullable=False),
        sa.Column("access_level_id", sa.String(length=255), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("is_consumable", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_products_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint(
            "app_id",
            "store",
            "store_product_id",
            "store_base_plan_id",
            name=op.f("uq_products_app_id_store_store_product_id_store_base_plan_id"),
        ),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("access_level_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('grant', 'revoke')", name=op.f("ck_access_grants_kind")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_access_grants_app_id_apps"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_access_grants_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_type", sa.String(length=32), nullable=False),
        sa.Column("store", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("store_product_id", sa.String(length=255), nullable=False),
        sa.Column("store_base_plan_id", sa.String(length=255), nullable=True),
        sa.Column("store_transaction_id", sa.String(length=255), nullable=False),
        sa.Column("store_original_transaction_id", sa.String(length=255), nullable=False),
        sa.Column("offer_category", sa.String(length=32), nullable=True),
        sa.Column("offer_type", sa.String(length=32), nullable=True),
        sa.Column("offer_id", sa.String(length=255), nullable=True),
        sa.Column("is_family_shared", sa.Boolean(), nullable=False),
        sa.Column("price_country", sa.String(length=2), nullable=False),
        sa.Column("price_currency", sa.String(length=3), nullable=False),
        sa.Column("price_value", sa.BigInteger(), nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=64), nullable=True),
        sa.Column("variation_id", sa.String(length=255), nullable=True),
        sa.Column("originally_purchased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renew_status", sa.Boolean(), nullable=True),
        sa.Column("renew_status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("billing_issue_detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grace_period_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_transactions_app_id_apps"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_transactions_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "app_id", "store", "store_transaction_id", name=op.f("uq_transactions_app_id_store_store_transaction_id")
        ),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transactions_app_id_purchased_at"), ["app_id", "purchased_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transactions_app_id_store_store_original_transaction_id"),
            ["app_id", "store", "store_original_transaction_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_transactions_profile_id"), ["profile_id"], unique=False)

    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derived", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("total_revenue_usd", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("total_revenue_usd")
        batch_op.drop_column("derived")

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_profile_id"))
        batch_op.drop_index(batch_op.f("ix_transactions_app_id_store_store_original_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_transactions_app_id_purchased_at"))

    op.drop_table("transactions")
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_grants_profile_id"))

    op.drop_table("access_grants")
    op.drop_table("products")
    op.drop_table("access_levels")
    op.drop_table("exchange_rates")
