"""paywalls as the contract shows them: title, state, web_purchase_url

Revision ID: 0019
Revises: 0018

``name`` becomes ``title``; ``is_archived`` gives way to ``state``: archived as it was, live
for a paywall a placement shows (itself or through an A/B test), draft otherwise (whether one
was shown before is not known). Nothing references ``paywalls``, so SQLite may rebuild it.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

paywalls = sa.table(
    "paywalls", sa.column("id", sa.Uuid()), sa.column("is_archived", sa.Boolean()), sa.column("state", sa.String())
)
placements = sa.table("placements", sa.column("targets", sa.JSON()))
ab_tests = sa.table("ab_tests", sa.column("id", sa.Uuid()), sa.column("variations", sa.JSON()))


def _shown(conn: sa.Connection) -> set[str]:
    tests = {str(test_id): variations for test_id, variations in conn.execute(sa.select(ab_tests))}
    shown = set()
    for (targets,) in conn.execute(sa.select(placements.c.targets)):
        for target in targets:
            if target.get("paywall_id"):
                shown.add(target["paywall_id"])
            elif target.get("ab_test_id") in tests:
                shown.update(variation["paywall_id"] for variation in tests[target["ab_test_id"]])
    return shown


def upgrade() -> None:
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.alter_column("name", new_column_name="title", existing_type=sa.String(length=255))
        batch_op.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="draft"))
        batch_op.add_column(sa.Column("web_purchase_url", sa.String(length=2048), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.update(paywalls).where(paywalls.c.is_archived.is_(True)).values(state="archived"))
    for paywall_id in _shown(conn):
        shown = sa.update(paywalls).where(paywalls.c.id == uuid.UUID(paywall_id), paywalls.c.is_archived.is_(False))
        conn.execute(shown.values(state="live"))
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None, existing_type=sa.String(length=16), existing_nullable=False)
        batch_op.drop_column("is_archived")
        batch_op.create_check_constraint(
            op.f("ck_paywalls_state"), "state IN ('draft', 'live', 'inactive', 'archived')"
        )


def downgrade() -> None:
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_archived", sa.Boolean(), nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    conn.execute(sa.update(paywalls).where(paywalls.c.state == "archived").values(is_archived=True))
    with op.batch_alter_table("paywalls", schema=None) as batch_op:
        batch_op.alter_column("is_archived", server_default=None, existing_type=sa.Boolean(), existing_nullable=False)
        batch_op.drop_constraint(op.f("ck_paywalls_state"), type_="check")
        batch_op.drop_column("web_purchase_url")
        batch_op.drop_column("state")
        batch_op.alter_column("title", new_column_name="name", existing_type=sa.String(length=255))
