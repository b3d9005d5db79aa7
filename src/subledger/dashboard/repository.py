"""SQL for operators, their sessions and actions, and the profile search."""

from datetime import datetime
from typing import Any, cast, get_args
from uuid import UUID

from sqlalchemy import Column, Connection, Select, delete, select, tuple_, union, update

from subledger.core import sql
from subledger.core.tables import (
    dashboard_sessions,
    operator_actions,
    operators,
    products,
    profiles,
    sign_in_buckets,
    transactions,
)
from subledger.profiles.schemas import Store

# Stores searched for a transaction id besides those of the app's products: every store a profile
# may name (the unique index leads with the store, so the search names each store it looks in).
KNOWN_STORES = get_args(Store)


def insert_operator(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(operators.insert(), values)


def find_operator(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(operators).where(operators.c.email == email)).first()
    return dict(row._mapping) if row else None


def list_operators(conn: Connection) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(select(operators).order_by(operators.c.email))]


def set_role(conn: Connection, email: str, role: str) -> int:
    return conn.execute(update(operators).where(operators.c.email == email).values(role=role)).rowcount


def insert_action(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(operator_actions.insert(), values)


def actions(conn: Connection, app_id: UUID, limit: int) -> list[dict[str, Any]]:
    query = (
        select(operator_actions)
        .where(operator_actions.c.app_id == app_id)
        .order_by(operator_actions.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def delete_operator(conn: Connection, email: str) -> int:
    return conn.execute(delete(operators).where(operators.c.email == email)).rowcount


def insert_session(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(dashboard_sessions.insert(), values)


def find_session(conn: Connection, token_hash: str, now: datetime) -> dict[str, Any] | None:
    query = (
        select(dashboard_sessions, operators.c.email, operators.c.role)
        .join(operators, operators.c.id == dashboard_sessions.c.operator_id)
        .where(dashboard_sessions.c.token_hash == token_hash, dashboard_sessions.c.expires_at > now)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash))


def delete_expired_sessions(conn: Connection, now: datetime) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= now))


def locked_sign_in_bucket(conn: Connection, email: str, address: str) -> float:
    """The ``full_at`` of the sign-in bucket of (email, address), its row locked until the
    transaction ends."""
    return sql.locked_bucket(conn, sign_in_buckets, {"email": email, "address": address})


def save_sign_in_bucket(conn: Connection, email: str, address: str, full_at: float) -> None:
    sql.save_bucket(conn, sign_in_buckets, {"email": email, "address": address}, full_at)


def delete_sign_in_bucket(conn: Connection, email: str, address: str) -> None:
    conn.execute(delete(sign_in_buckets).where(sign_in_buckets.c.email == email, sign_in_buckets.c.address == address))


def delete_full_sign_in_buckets(conn: Connection, now: float) -> None:
    conn.execute(delete(sign_in_buckets).where(sign_in_buckets.c.full_at <= now))


def any_transaction(conn: Connection, app_id: UUID) -> bool:
    """Whether the app has recorded a transaction, in any environment."""
    return conn.execute(select(transactions.c.id).where(transactions.c.app_id == app_id).limit(1)).first() is not None


_LISTED = ("id", "customer_user_id", "email", "store", "store_country", "ip_country", "created_at")


def newest_profiles(
    conn: Connection, app_id: UUID, before: tuple[datetime, UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """The app's profiles newest first (by creation, then id), from just before ``before``, with
    what a customers list shows and filters on."""
    columns = [profiles.c[name] for name in _LISTED]
    query = select(*columns, profiles.c.total_revenue_usd, profiles.c.derived).where(profiles.c.app_id == app_id)
    if before is not None:
        query = query.where(tuple_(profiles.c.created_at, profiles.c.id) < before)
    query = query.order_by(profiles.c.created_at.desc(), profiles.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def profiles_starting_with(conn: Connection, app_id: UUID, column: str, prefix: str, limit: int) -> list[UUID]:
    """The first profiles, in byte order of ``column`` (customer_user_id or email), whose value of it
    starts with ``prefix``."""
    searched = profiles.c[column]
    query = (
        select(profiles.c.id)
        .where(profiles.c.app_id == app_id, sql.starts_with(searched, prefix))
        .order_by(searched, profiles.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def listed_profiles(conn: Connection, app_id: UUID, ids: list[UUID]) -> list[dict[str, Any]]:
    """The app's profiles of these ids with what a list of them shows, in the order of ``ids``."""
    query = select(*(profiles.c[name] for name in _LISTED), profiles.c.total_revenue_usd).where(
        profiles.c.app_id == app_id, profiles.c.id.in_(ids)
    )
    rows = {row.id: dict(row._mapping) for row in conn.execute(query)}
    return [rows[profile_id] for profile_id in ids if profile_id in rows]


def profiles_with_transaction(conn: Connection, app_id: UUID, transaction_id: str, limit: int) -> list[UUID]:
    """Profiles holding a transaction with this store transaction id or original transaction id.

    One query per id column, joined by UNION: with OR in one query the planners
    fall back to reading every transaction of the app.
    """
    app_stores = select(products.c.store).where(products.c.app_id == app_id).distinct()
    stores = sorted({*KNOWN_STORES, *conn.execute(app_stores).scalars()})

    def holders(column: Column[Any]) -> Select[tuple[UUID]]:
        return select(transactions.c.profile_id).where(
            transactions.c.app_id == app_id, transactions.c.store.in_(stores), column == transaction_id
        )

    query = union(
        holders(transactions.c.store_transaction_id), holders(transactions.c.store_original_transaction_id)
    ).limit(limit)
    return cast(list[UUID], list(conn.execute(query).scalars()))  # the union's rows are one id each
