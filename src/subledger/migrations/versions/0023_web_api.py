"""the Web API: attribution, paywall views by variation, allowed origins

Revision ID: 0023
Revises: 0022

Profiles keep their latest attribution per source, every one kept in ``attributions``; a paywall
view may name its variation alone (no placement) and its store; each app lists the origins whose
pages may call its Web API. Columns are added to ``profiles`` in place (recreating it on SQLite
would cascade-delete their ledgers); ``paywall_views`` is rebuilt to let placement_id be null.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profiles", sa.Column("attribution", sa.JSON(), nullable=True))
    op.create_table(
        "attributions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attribution_user_id", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=255), nullable=True),
        sa.Column("campaign", sa.String(length=255), nullable=True),
        sa.Column("ad_group", sa.String(length=255), nullable=True),
        sa.Column("ad_set", sa.String(length=255), nullable=True),
        sa.Column("creative", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_attributions_app_id_apps"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_attributions_profile_id_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attributions")),
    )
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attributions_profile_id_created_at"), ["profile_id", "created_at"], unique=False
        )
    op.create_table(
        "web_api_origins",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_web_api_origins_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "origin", name=op.f("pk_web_api_origins")),
    )
    with op.batch_alter_table("web_api_origins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_api_origins_origin"), ["origin"], unique=False)
    with op.batch_alter_table("paywall_views", schema=None) as batch_op:
        batch_op.alter_column("placement_id", existing_type=sa.String(length=255), nullable=True)
        batch_op.add_column(sa.Column("store", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM paywall_views WHERE placement_id IS NULL")
    with op.batch_alter_table("paywall_views", schema=None) as batch_op:
        batch_op.drop_column("store")
        batch_op.alter_column("placement_id", existing_type=sa.String(length=255), nullable=False)
    op.drop_table("web_api_origins")
    op.drop_table("attributions")
    op.drop_column("profiles", "attribution")
