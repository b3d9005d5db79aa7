"""every app has the access level premium

Revision ID: 0017
Revises: 0016

Apps made from now on get it at their creation; this gives it to those made before.
Downgrading leaves it: it may be in use by then.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO access_levels (app_id, id, created_at) "
            "SELECT apps.id, 'premium', apps.created_at FROM apps WHERE NOT EXISTS "
            "(SELECT 1 FROM access_levels WHERE access_levels.app_id = apps.id AND access_levels.id = 'premium')"
        )
    )


def downgrade() -> None:
    pass
