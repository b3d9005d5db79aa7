"""webhook endpoints as the reference has them: sandbox URL, options, event names; refused deliveries

Revision ID: 0024
Revises: 0023

An endpoint gets a sandbox URL with its own Authorization value (its URL becomes the production
one, and either may be absent), a name for each event type it renames, and the reference's
options. A delivery records which of the two URLs it goes to, and may end as ``refused``: the
receiver answered 3xx or 400-404, which the reference treats as final. Both tables are rebuilt
on SQLite (``Database.migrating`` keeps the rows that refer to them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

OPTIONS = [
    ("send_trial_price", sa.false()),
    ("exclude_historical_events", sa.false()),
    ("send_user_attributes", sa.true()),
    ("send_attribution", sa.true()),
    ("send_play_store_purchase_token", sa.false()),
]


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("url", existing_type=sa.String(length=2048), nullable=True)
        batch_op.add_column(sa.Column("sandbox_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("event_names", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("sandbox_authorization_header", sa.String(length=2048), nullable=True))
        for name, default in OPTIONS:
            batch_op.add_column(sa.Column(name, sa.Boolean(), server_default=default, nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_webhook_endpoints_a_url"), "url IS NOT NULL OR sandbox_url IS NOT NULL"
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sa.String(length=16), server_default="production", nullable=False))
        batch_op.drop_constraint(op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_status"), "status IN ('pending', 'delivered', 'refused', 'dead')"
        )
        batch_op.create_check_constraint(op.f("ck_deliveries_target"), "target IN ('production', 'sandbox')")


def downgrade() -> None:
    # Sandbox deliveries and sandbox-only endpoints have no place in the schema before.
    op.execute("DELETE FROM deliveries WHERE target = 'sandbox'")
    op.execute("DELETE FROM webhook_endpoints WHERE url IS NULL")
    op.execute("UPDATE deliveries SET status = 'dead' WHERE status = 'refused'")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_target"), type_="check")
        batch_op.drop_constraint(op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_deliveries_status"), "status IN ('pending', 'delivered', 'dead')")
        batch_op.drop_column("target")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_endpoints_a_url"), type_="check")
        for name, _default in OPTIONS:
            batch_op.drop_column(name)
        batch_op.drop_column("sandbox_authorization_header")
        batch_op.drop_column("event_names")
        batch_op.drop_column("sandbox_url")
        batch_op.alter_column("url", existing_type=sa.String(length=2048), nullable=False)
