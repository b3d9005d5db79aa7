"""metric rollups

Revision ID: 0010
Revises: 0009

The rollups start empty, with every existing app marked for a rebuild from its
ledger: ``subledger migrate`` runs it after the schema change. Profiles get an
index to walk an app's profiles in id order, which that rebuild does.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)
KEY = ("store", "product", "country", "environment")
DAY_MEASURES = (
    "gross",
    "refunds",
    "purchases",
    "refunded",
    "new_subscriptions",
    "new_trials",
    "trial_conversions",
    "churned",
    "paid_change",
    "mrr_change",
    "trial_change",
)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _key() -> list[sa.Column[str]]:
    lengths = {"store": 255, "product": 255, "country": 2, "environment": 16}
    return [sa.Column(name, sa.String(length=lengths[name]), nullable=False) for name in KEY]


def _app(table: str) -> list[Any]:
    return [
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f(f"fk_{table}_app_id_apps"), ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_table(
        "metric_days",
        *_app("metric_days"),
        sa.Column("day", sa.Date(), nullable=False),
        *_key(),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in DAY_MEASURES],
        sa.PrimaryKeyConstraint("app_id", "day", *KEY, "shard", name=op.f("pk_metric_days")),
    )
    op.create_table(
        "metric_payers",
        *_app("metric_payers"),
        sa.Column("period", sa.String(length=5), nullable=False),
        *_key(),
        sa.Column("bucket", sa.Date(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("profiles", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "period", *KEY, "bucket", "shard", name=op.f("pk_metric_payers")),
    )
    op.create_table(
        "metric_cohorts",
        *_app("metric_cohorts"),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("month_offset", sa.Integer(), nullable=False),
        *_key(),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("covered", sa.BigInteger(), nullable=False),
        sa.Column("onward", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "cohort", "month_offset", *KEY, "shard", name=op.f("pk_metric_cohorts")),
    )
    op.create_table(
        "metric_coverage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        *_app("metric_coverage"),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("starts_at", WHEN, nullable=False),
        sa.Column("ends_at", WHEN, nullable=True),
        sa.Column("mrr", sa.BigInteger(), nullable=False),
        *_key(),
        sa.CheckConstraint("kind IN ('paid', 'trial', 'churn')", name=op.f("ck_metric_coverage_kind")),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_metric_coverage_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_coverage")),
    )
    with op.batch_alter_table("metric_coverage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metric_coverage_app_id_ends_at"), ["app_id", "ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_metric_coverage_app_id_starts_at"), ["app_id", "starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_metric_coverage_profile_id"), ["profile_id"], unique=False)
    op.create_table(
        "metric_rebuilds",
        *_app("metric_rebuilds"),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_metric_rebuilds")),
    )
    op.execute("INSERT INTO metric_rebuilds (app_id) SELECT id FROM apps")
    op.create_index(op.f("ix_profiles_app_id_id"), "profiles", ["app_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_profiles_app_id_id"), table_name="profiles")
    for table in ("metric_rebuilds", "metric_coverage", "metric_cohorts", "metric_payers", "metric_days"):
        op.drop_table(table)
