"""public API keys, for the Web API

Revision ID: 0022
Revises: 0021

Every key so far is a secret key. An app gets its public key from `subledger keys rotate
--public` (apps made from now on get one at their creation): only its hash is kept, so none can
be made here for apps that exist.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="secret", nullable=False))
        batch_op.create_check_constraint(op.f("ck_api_keys_kind"), "kind IN ('secret', 'public')")


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE kind = 'public'")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_kind"), type_="check")
        batch_op.drop_column("kind")
