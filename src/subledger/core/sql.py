"""Statements every feature's repository needs in both dialects: insert unless there, upsert, add
up, and token buckets kept in rows."""

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from subledger.core.prepared import Prepared


def _insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the dialect at hand, for its ON CONFLICT clauses."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@lru_cache(maxsize=64)
def _upsert_statement(
    dialect_name: str,
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    adding: bool,
    unless_same: tuple[str, ...] = (),
) -> Prepared:
    statement = _insert(dialect_name, table)
    new = statement.excluded
    return Prepared(
        statement.on_conflict_do_update(
            index_elements=[table.c[key] for key in keys],
            set_={column: table.c[column] + new[column] if adding else new[column] for column in update},
            where=or_(*(table.c[column] != new[column] for column in unless_same)) if unless_same else None,
        )
    )


@lru_cache(maxsize=16)
def _insert_new_statement(dialect_name: str, table: Table, keys: tuple[str, ...]) -> Prepared:
    statement = _insert(dialect_name, table).on_conflict_do_nothing(index_elements=[table.c[key] for key in keys])
    return Prepared(statement.returning(*table.c))


def insert_new(conn: Connection, table: Table, row: dict[str, Any], keys: list[str]) -> dict[str, Any] | None:
    """INSERT the row unless one with the same ``keys`` is there already: the row as
    stored (read back in the same statement), or None when it was not inserted."""
    return _insert_new_statement(conn.dialect.name, table, tuple(keys)).first(conn, row)


def locked_bucket(conn: Connection, table: Table, key: dict[str, Any]) -> float:
    """The ``full_at`` of a token bucket (``core.buckets``) kept in ``table`` under ``key``, its
    row locked until the transaction ends. The row is made first when missing (full since the
    epoch), so that two processes cannot both find none and each start from a full bucket."""
    insert_new(conn, table, {**key, "full_at": 0.0}, list(key))
    return float(conn.execute(select(table.c.full_at).where(*_matching(table, key)).with_for_update()).scalar_one())


def save_bucket(conn: Connection, table: Table, key: dict[str, Any], full_at: float) -> None:
    conn.execute(update(table).where(*_matching(table, key)).values(full_at=full_at))


def _matching(table: Table, key: dict[str, Any]) -> list[ColumnElement[bool]]:
    return [table.c[name] == value for name, value in key.items()]


def upsert(
    conn: Connection,
    table: Table,
    rows: dict[str, Any] | list[dict[str, Any]],
    keys: list[str],
    update: list[str],
    unless_same: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET the ``update`` columns to the new row's values,
    in the dialect at hand (the statement is built once per shape). With ``unless_same``, a row
    already there is left alone when it holds the new values in those (non-null) columns."""
    statement = _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update), False, unless_same)
    if isinstance(rows, dict):
        statement.rows(conn, rows)
    else:
        statement.execute_many(conn, rows)


def add_up(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], update: list[str]) -> None:
    """Like ``upsert``, but a row already there gets the new values added to its own."""
    _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update), True).execute_many(conn, rows)


def starts_with(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix`` (not empty), as a range an index on the column serves. The
    column must compare in byte order (``tables.Searchable``): in UTF-8 that is code point order,
    where every string that starts with the prefix lies below the prefix's last character plus one."""
    stem = prefix.rstrip(chr(0x10FFFF))  # nothing lies above the last code point: carry to the one before
    if not stem:
        return column >= prefix
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are no characters: UTF-8 holds none
        following = 0xE000
    return and_(column >= prefix, column < stem[:-1] + chr(following))
