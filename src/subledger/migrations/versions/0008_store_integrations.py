"""store integrations: store settings, notifications, the audit log of refused ones

The Stripe key moves from ``apps`` into the app's Stripe settings (still sealed).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

JSON = sa.JSON()
WHEN = sa.DateTime(timezone=True)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refused_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=32), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=False),
        sa.Column("remote_address", sa.String(length=64), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("body_excerpt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_refused_notifications_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_notifications")),
    )
    with op.batch_alter_table("refused_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refused_notifications_app_id_received_at"), ["app_id", "received_at"], unique=False
        )

    store_configs = op.create_table(
        "store_configs",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=32), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secrets", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_store_configs_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "store", name=op.f("pk_store_configs")),
    )
    op.create_table(
        "store_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=32), nullable=False),
        sa.Column("notification_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=255), nullable=False),
        sa.Column("signed_at", WHEN, nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1024), nullable=True),
        sa.Column("original_transaction_id", sa.String(length=255), nullable=True),
        sa.Column("account", sa.String(length=255), nullable=True),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("transactions", JSON, nullable=False),
        sa.Column("refunds", JSON, nullable=False),
        sa.Column("applied_at", WHEN, nullable=True),
        sa.CheckConstraint(
            "status IN ('applied', 'pending', 'stale', 'ignored')", name=op.f("ck_store_notifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_store_notifications_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_store_notifications_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_notifications")),
        sa.UniqueConstraint(
            "app_id", "store", "notification_id", name=op.f("uq_store_notifications_app_id_store_notification_id")
        ),
    )
    with op.batch_alter_table("store_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_store_notifications_app_id_store_original_transaction_id"),
            ["app_id", "store", "original_transaction_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_store_notifications_status_received_at"), ["status", "received_at"], unique=False
        )

    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("stripe_secret_key", sa.String()))
    conn = op.get_bind()
    keys = conn.execute(sa.select(apps.c.id, apps.c.stripe_secret_key).where(apps.c.stripe_secret_key.isnot(None)))
    rows = [
        {
            "app_id": app_id,
            "store": "stripe",
            "settings": {},
            "secrets": {"secret_key": sealed},
            "updated_at": sa.func.now(),
        }
        for app_id, sealed in keys
    ]
    for row in rows:
        conn.execute(store_configs.insert().values(row))
    # Not a batch operation: on SQLite that copies ``apps`` and drops the original, and
    # the drop would cascade to every table that references apps. SQLite (3.35+) drops
    # a plain column in place.
    op.drop_column("apps", "stripe_secret_key")


def downgrade() -> None:
    op.add_column("apps", sa.Column("stripe_secret_key", sa.String(length=1024), nullable=True))
    store_configs = sa.table(
        "store_configs", sa.column("app_id", sa.Uuid()), sa.column("store"), sa.column("secrets", JSON)
    )
    apps = sa.table("apps", sa.column("id", sa.Uuid()), sa.column("stripe_secret_key", sa.String()))
    conn = op.get_bind()
    found = conn.execute(
        sa.select(store_configs.c.app_id, store_configs.c.secrets).where(store_configs.c.store == "stripe")
    )
    for app_id, secrets in list(found):
        if secrets.get("secret_key"):
            conn.execute(apps.update().where(apps.c.id == app_id).values(stripe_secret_key=secrets["secret_key"]))

    with op.batch_alter_table("store_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_notifications_status_received_at"))
        batch_op.drop_index(batch_op.f("ix_store_notifications_app_id_store_original_transaction_id"))
    op.drop_table("store_notifications")
    op.drop_table("store_configs")
    with op.batch_alter_table("refused_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refused_notifications_app_id_received_at"))
    op.drop_table("refused_notifications")
