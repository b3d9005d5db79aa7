"""a profile's derived state compressed: about 140 bytes where its JSON took 1,400

Revision ID: 0036
Revises: 0035

``profiles.derived`` becomes binary, each value deflated against a dictionary of the keys and
values most profiles share (``subledger.core.packing``; its first byte names the dictionary).
No query looks inside it: only Python reads it. Each profile is rewritten, a thousand at a time.
"""

from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from subledger.core.packing import pack, unpack

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    _refuse_cascades()
    with op.batch_alter_table("profiles") as batch_op:  # SQLite copies the text as its bytes
        batch_op.alter_column(
            "derived",
            type_=sa.LargeBinary(),
            existing_type=sa.JSON(),
            postgresql_using="convert_to(derived::text, 'UTF8')",
        )
    _rewrite(lambda value: pack(orjson.loads(value)))


def downgrade() -> None:
    _refuse_cascades()
    # SQLite keeps text as text in a BLOB column, and its copy to JSON below does not cast.
    text = op.get_bind().dialect.name == "sqlite"

    def as_json(packed: bytes) -> str | bytes:
        json = orjson.dumps(unpack(packed))
        return json.decode() if text else json

    _rewrite(as_json)
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.alter_column(
            "derived",
            type_=sa.JSON(),
            existing_type=sa.LargeBinary(),
            postgresql_using="convert_from(derived, 'UTF8')::json",
        )


def _refuse_cascades() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # SQLite's profiles table is rebuilt: dropping it would first delete every row that refers to it.
        raise RuntimeError("SQLite's tables are rebuilt with foreign keys off: migrate with `subledger migrate`")


def _rewrite(convert: Callable[[bytes], Any]) -> None:
    """Pass every profile's derived state through ``convert``, in pages of ids."""
    bind = op.get_bind()
    # Untyped, the values go as they are: SQLite holds an id as 16 bytes since 0035, PostgreSQL
    # as a uuid; the state as bytes, or on the way down to SQLite's JSON, text.
    profiles = sa.table("profiles", sa.column("id"), sa.column("derived"))
    update = profiles.update().where(profiles.c.id == sa.bindparam("key")).values(derived=sa.bindparam("value"))
    after = None
    while True:
        query = sa.select(profiles.c.id, profiles.c.derived).where(profiles.c.derived.is_not(None))
        if after is not None:
            query = query.where(profiles.c.id > after)
        rows = bind.execute(query.order_by(profiles.c.id).limit(BATCH)).all()
        if not rows:
            return
        bind.execute(update, [{"key": key, "value": convert(bytes(value))} for key, value in rows])
        after = rows[-1][0]
