"""paywalls, audiences, A/B tests, placements, views

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

JSON = sa.JSON()


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("variations", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_ab_tests_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_tests")),
    )
    with op.batch_alter_table("ab_tests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ab_tests_app_id"), ["app_id"], unique=False)

    op.create_table(
        "audiences",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_audiences_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "id", name=op.f("pk_audiences")),
    )
    op.create_table(
        "paywalls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("product_ids", JSON, nullable=False),
        sa.Column("remote_configs", JSON, nullable=False),
        sa.Column("is_archived", sa.Boolean(), nullable=False),
        sa.Column("variation_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_paywalls_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paywalls")),
    )
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paywalls_app_id_created_at"), ["app_id", "created_at"], unique=False)

    op.create_table(
        "placements",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("targets", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_placements_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "id", name=op.f("pk_placements")),
    )
    op.create_table(
        "paywall_views",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("placement_id", sa.String(length=255), nullable=False),
        sa.Column("paywall_id", sa.Uuid(), nullable=False),
        sa.Column("variation_id", sa.Uuid(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_paywall_views_app_id_apps"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_paywall_views_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paywall_views")),
    )
    with op.batch_alter_table("paywall_views", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_paywall_views_app_id_variation_id"), ["app_id", "variation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("paywall_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paywall_views_app_id_variation_id"))

    op.drop_table("paywall_views")
    op.drop_table("placements")
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paywalls_app_id_created_at"))

    op.drop_table("paywalls")
    op.drop_table("audiences")
    with op.batch_alter_table("ab_tests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ab_tests_app_id"))

    op.drop_table("ab_tests")
