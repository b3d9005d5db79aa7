"""SQLite: UUIDs as 16 bytes, moments as integer microseconds

Revision ID: 0035
Revises: 0034

SQLAlchemy stores a UUID on SQLite as 32 hexadecimal characters and a datetime as 26 characters
of text. Together they were about half of each ledger row and most of each index entry. Every
table is rewritten with its UUID columns as 16-byte blobs and its datetime columns as integer
microseconds since 1970 (UTC); on an embedded database of a million profiles that takes minutes.
PostgreSQL already stores both in 16 and 8 bytes: nothing changes there.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

# How SQLAlchemy declares each type on SQLite, before (sa.Uuid, sa.DateTime) and after.
HEX_UUID, TEXT_MOMENT = "CHAR(32)", "DATETIME"
BYTES_UUID, MICROS_MOMENT = "BLOB", "BIGINT"
# After, other columns are declared so too: the moments are known by name, and the blobs that
# are not UUIDs.
MOMENTS = frozenset(
    "applied_at at attempted_at billing_issue_detected_at claimed_until created_at deferred_at delivered_at due_at"
    " ends_at event_datetime expires_at first_attempt_at grace_period_expires_at next_attempt_at"
    " originally_purchased_at paused_at purchased_at received_at refunded_at renew_status_changed_at revoked_at"
    " signed_at starts_at updated_at viewed_at".split()
)
BLOBS = frozenset({"body"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _uuid_bytes(value: str | None) -> bytes | None:
    return None if value is None else UUID(value).bytes


def _uuid_hex(value: bytes | None) -> str | None:
    return None if value is None else UUID(bytes=value).hex


def _micros(value: str | None) -> int | None:
    return None if value is None else (datetime.fromisoformat(value).replace(tzinfo=UTC) - EPOCH) // MICROSECOND


def _moment_text(value: int | None) -> str | None:
    # The format SQLAlchemy's SQLite DATETIME writes.
    return None if value is None else (EPOCH + value * MICROSECOND).strftime("%Y-%m-%d %H:%M:%S.%f")


def upgrade() -> None:
    def conversion(column: str, declared: str) -> tuple[str, Callable[[Any], Any]] | None:
        if declared == HEX_UUID:
            return BYTES_UUID, _uuid_bytes
        return (MICROS_MOMENT, _micros) if declared == TEXT_MOMENT else None

    _rebuild(conversion)


def downgrade() -> None:
    def conversion(column: str, declared: str) -> tuple[str, Callable[[Any], Any]] | None:
        if declared == BYTES_UUID and column not in BLOBS:
            return HEX_UUID, _uuid_hex
        return (TEXT_MOMENT, _moment_text) if declared == MICROS_MOMENT and column in MOMENTS else None

    _rebuild(conversion)


def _rebuild(conversion: Callable[[str, str], tuple[str, Callable[[Any], Any]] | None]) -> None:
    """Give every column that ``conversion`` (of its name and declared type) finds a new declared
    type, its values passed through the function that comes with it. Each table is rebuilt the way
    SQLite's documentation gives for changes ALTER TABLE cannot make: a new table, its rows copied
    converted, the old one dropped, the new one renamed, the indexes made again."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Dropping a table would first delete, by cascade, every row that refers to it.
        raise RuntimeError("SQLite's tables are rebuilt with foreign keys off: migrate with `subledger migrate`")
    driver = bind.connection.dbapi_connection
    assert driver is not None
    functions: dict[Callable[[Any], Any], str] = {}
    tables = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        " AND name != 'alembic_version'"
    ).all()
    for table, create in tables:
        columns = [(name, declared) for _, name, declared, *_ in bind.exec_driver_sql(f'PRAGMA table_info("{table}")')]
        changes = {name: change for name, declared in columns if (change := conversion(name, declared))}
        if not changes:
            continue
        for name, (new_declared, function) in changes.items():
            if function not in functions:
                functions[function] = f"subledger_convert_{len(functions)}"
                driver.create_function(functions[function], 1, function, deterministic=True)
            # A column's definition follows the opening parenthesis or a comma.
            create, count = re.subn(
                rf'([(,]\s*"?{re.escape(name)}"?\s+)\w+(\(\d+\))?(?=[\s,)])',
                rf"\g<1>{new_declared}",
                create,
                count=1,
            )
            assert count == 1, f"{table}.{name} not found in {create}"
        indexes = [
            sql
            for (sql,) in bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
            )
        ]
        names = ", ".join(f'"{name}"' for name, _ in columns)
        values = ", ".join(
            f'{functions[changes[name][1]]}("{name}")' if name in changes else f'"{name}"' for name, _ in columns
        )
        new = f"_subledger_new_{table}"
        bind.exec_driver_sql(re.sub(r'^CREATE TABLE\s+("?)\w+\1', f'CREATE TABLE "{new}"', create, count=1))
        bind.exec_driver_sql(f'INSERT INTO "{new}" ({names}) SELECT {values} FROM "{table}"')
        bind.exec_driver_sql(f'DROP TABLE "{table}"')
        bind.exec_driver_sql(f'ALTER TABLE "{new}" RENAME TO "{table}"')
        for sql in indexes:
            bind.exec_driver_sql(sql)
