"""granted access levels show a product and transaction ids

Revision ID: 0018
Revises: 0017

The contract declares an access level's ``store_product_id``, ``store_transaction_id`` and
``store_original_transaction_id`` non-nullable; a level granted without naming them now shows
``adapty_server_side_product`` and an id generated from the profile, the level and the grant's
start (``purchases.rules.grant_transaction_id``, whose formula this copies: a migration keeps
to what it did when it was written). Profiles derived before get the same in their stored state.
"""

import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PURCHASE_NAMESPACE = uuid.UUID("6f0c6f38-5b8e-4d7c-9a55-3b0c2f1d9e41")
PAGE = 500

profiles = sa.table("profiles", sa.column("id", sa.Uuid()), sa.column("derived", sa.JSON()))
access_grants = sa.table("access_grants", sa.column("profile_id", sa.Uuid()), sa.column("kind", sa.String()))


def _filled(profile_id: uuid.UUID, derived: dict[str, Any]) -> bool:
    changed = False
    for level in derived.get("access_levels", []):
        if level["store_transaction_id"] is None or level["store_product_id"] is None:
            keys = [str(profile_id), "grant", level["access_level_id"], level["starts_at"]]
            generated = str(uuid.uuid5(PURCHASE_NAMESPACE, "\x1f".join(keys)))
            level["store_product_id"] = level["store_product_id"] or "adapty_server_side_product"
            level["store_transaction_id"] = level["store_transaction_id"] or generated
            level["store_original_transaction_id"] = level["store_original_transaction_id"] or generated
            changed = True
    return changed


def upgrade() -> None:
    conn = op.get_bind()
    granted = sa.select(access_grants.c.profile_id).where(access_grants.c.kind == "grant")
    after = None
    while True:
        query = sa.select(profiles.c.id, profiles.c.derived).where(profiles.c.id.in_(granted))
        if after is not None:
            query = query.where(profiles.c.id > after)
        rows = conn.execute(query.order_by(profiles.c.id).limit(PAGE)).all()
        for profile_id, derived in rows:
            if derived and _filled(profile_id, derived):
                conn.execute(sa.update(profiles).where(profiles.c.id == profile_id).values(derived=derived))
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


def downgrade() -> None:
    pass  # the ids stay: nothing before them minds them
