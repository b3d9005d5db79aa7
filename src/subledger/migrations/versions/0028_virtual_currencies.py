"""virtual currencies, and idempotency keys for every write

Revision ID: 0028
Revises: 0027

An app switches virtual currencies on (``apps.virtual_currencies``) and names its currencies;
a profile's balances change only through transactions whose items keep the history, and a
product may credit currencies when bought. ``idempotency_keys`` keeps the answers of writes
sent with an ``Idempotency-Key``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "currency_rate_buckets",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_currency_rate_buckets_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_currency_rate_buckets")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('running', 'applied', 'done')", name=op.f("ck_idempotency_keys_state")),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_idempotency_keys_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "key_digest", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False)

    op.create_table(
        "virtual_currencies",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_virtual_currencies_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "code", name=op.f("pk_virtual_currencies")),
    )
    op.create_table(
        "currency_balances",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("currency_code", sa.String(length=30), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_currency_balances_balance")),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_currency_balances_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("profile_id", "currency_code", name=op.f("pk_currency_balances")),
    )
    op.create_table(
        "currency_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_type", sa.String(length=32), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_currency_transactions_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_currency_transactions_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_currency_transactions")),
        sa.UniqueConstraint(
            "profile_id",
            "source",
            "transaction_type",
            name=op.f("uq_currency_transactions_profile_id_source_transaction_type"),
        ),
    )
    with op.batch_alter_table("currency_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_currency_transactions_profile_id_created_at_id"),
            ["profile_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "product_currency_grants",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("currency_code", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_product_currency_grants_amount")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_currency_grants_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "currency_code", name=op.f("pk_product_currency_grants")),
    )
    op.create_table(
        "currency_transaction_items",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("currency_code", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["currency_transactions.id"],
            name=op.f("fk_currency_transaction_items_transaction_id_currency_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transaction_id", "currency_code", name=op.f("pk_currency_transaction_items")),
    )
    # Not a batch operation: on SQLite that rebuilds the apps table, and every row referring to it.
    op.add_column("apps", sa.Column("virtual_currencies", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("apps", "virtual_currencies")

    op.drop_table("currency_transaction_items")
    op.drop_table("product_currency_grants")
    with op.batch_alter_table("currency_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_currency_transactions_profile_id_created_at_id"))

    op.drop_table("currency_transactions")
    op.drop_table("currency_balances")
    op.drop_table("virtual_currencies")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    op.drop_table("currency_rate_buckets")
