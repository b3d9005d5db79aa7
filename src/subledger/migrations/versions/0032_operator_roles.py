"""operator roles, and the trail of what operators did

Revision ID: 0032
Revises: 0031

An operator is an owner (everything) or an analyst (reads, changes nothing); every operator there
was is an owner. Every form an operator posts to an app's dashboard pages is recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("operators", sa.Column("role", sa.String(16), nullable=False, server_default=sa.text("'owner'")))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_email", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_operator_actions_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_actions")),
    )
    op.create_index("ix_operator_actions_app_id_id", "operator_actions", ["app_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_operator_actions_app_id_id", table_name="operator_actions")
    op.drop_table("operator_actions")
    with op.batch_alter_table("operators") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("role")
