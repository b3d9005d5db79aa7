"""SQL for store settings, received notifications and the audit log of refused ones."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, update

from subledger.core.sql import add_up, upsert
from subledger.core.tables import (
    profiles,
    refused_counts,
    refused_notifications,
    store_configs,
    store_notifications,
    transactions,
)


def find_config(conn: Connection, app_id: UUID, store: str) -> dict[str, Any] | None:
    query = select(store_configs).where(store_configs.c.app_id == app_id, store_configs.c.store == store)
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def list_configs(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    query = select(store_configs).where(store_configs.c.app_id == app_id).order_by(store_configs.c.store)
    return [dict(row._mapping) for row in conn.execute(query)]


def save_config(conn: Connection, values: dict[str, Any]) -> None:
    upsert(conn, store_configs, values, keys=["app_id", "store"], update=["settings", "secrets", "updated_at"])


def notification_known(conn: Connection, app_id: UUID, store: str, notification_id: str) -> bool:
    query = select(store_notifications.c.id).where(
        store_notifications.c.app_id == app_id,
        store_notifications.c.store == store,
        store_notifications.c.notification_id == notification_id,
    )
    return conn.execute(query).first() is not None


def insert_notification(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(store_notifications.insert(), values)


def update_notification(conn: Connection, notification_key: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(store_notifications).where(store_notifications.c.id == notification_key).values(values))


def latest_applied(conn: Connection, app_id: UUID, store: str, original_transaction_id: str) -> datetime | None:
    """When the newest notification applied to this subscription chain was signed."""
    query = select(func.max(store_notifications.c.signed_at)).where(
        store_notifications.c.app_id == app_id,
        store_notifications.c.store == store,
        store_notifications.c.original_transaction_id == original_transaction_id,
        store_notifications.c.status == "applied",
    )
    return conn.execute(query).scalar()


def pending_of_chain(conn: Connection, app_id: UUID, store: str, original_transaction_id: str) -> list[dict[str, Any]]:
    query = (
        select(store_notifications)
        .where(
            store_notifications.c.app_id == app_id,
            store_notifications.c.store == store,
            store_notifications.c.original_transaction_id == original_transaction_id,
            store_notifications.c.status == "pending",
        )
        .order_by(store_notifications.c.signed_at, store_notifications.c.received_at)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def resolvable_pending(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Pending notifications whose user is now known: their chain is in the ledger,
    or a profile has their account as customer_user_id. Oldest signed first."""
    n = store_notifications
    chain_known = exists().where(
        transactions.c.app_id == n.c.app_id,
        transactions.c.store == n.c.store,
        transactions.c.store_original_transaction_id == n.c.original_transaction_id,
    )
    account_known = exists().where(
        profiles.c.app_id == n.c.app_id,
        profiles.c.customer_user_id == n.c.account,
    )
    query = (
        select(n)
        .where(n.c.status == "pending", or_(and_(n.c.original_transaction_id.isnot(None), chain_known), account_known))
        .order_by(n.c.signed_at, n.c.received_at)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def lock_pending(conn: Connection, notification_key: UUID) -> dict[str, Any] | None:
    """The notification, locked, if it is still pending (another worker may have applied it)."""
    query = (
        select(store_notifications)
        .where(store_notifications.c.id == notification_key, store_notifications.c.status == "pending")
        .with_for_update(skip_locked=True)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def list_notifications(
    conn: Connection, app_id: UUID, store: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(store_notifications).where(store_notifications.c.app_id == app_id)
    if store:
        query = query.where(store_notifications.c.store == store)
    if status:
        query = query.where(store_notifications.c.status == status)
    query = query.order_by(store_notifications.c.received_at.desc(), store_notifications.c.id).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def insert_refused(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(refused_notifications.insert(), values)


def refused_since(conn: Connection, app_id: UUID, since: datetime, remote: str | None) -> tuple[int, int]:
    """How many requests the app refused since ``since``: from anywhere, and from ``remote``."""
    table = refused_notifications
    recent = select(func.count()).where(table.c.app_id == app_id, table.c.received_at >= since)
    from_there = recent.where(table.c.remote_address.is_(None) if remote is None else table.c.remote_address == remote)
    return conn.execute(recent).scalar_one(), conn.execute(from_there).scalar_one()


def drop_oldest_refused(conn: Connection, app_id: UUID, keep: int, before: datetime) -> int:
    """Delete the app's refused requests received before ``before``, but the newest ``keep``; how many."""
    table = refused_notifications
    newest = (
        select(table.c.id).where(table.c.app_id == app_id).order_by(table.c.received_at.desc(), table.c.id).limit(keep)
    )
    doomed = select(table.c.id).where(table.c.app_id == app_id, table.c.received_at < before, table.c.id.not_in(newest))
    return conn.execute(delete(table).where(table.c.id.in_(doomed))).rowcount


def count_refused(conn: Connection, app_id: UUID, not_kept: int) -> None:
    """Count one more refused request of the app, ``not_kept`` of them not in the log."""
    add_up(
        conn,
        refused_counts,
        [{"app_id": app_id, "refused": 1, "not_kept": not_kept}],
        ["app_id"],
        ["refused", "not_kept"],
    )


def refused_totals(conn: Connection, app_id: UUID) -> dict[str, int]:
    row = conn.execute(select(refused_counts).where(refused_counts.c.app_id == app_id)).mappings().first()
    return {"refused": row["refused"], "not_kept": row["not_kept"]} if row else {"refused": 0, "not_kept": 0}


def delete_settled(conn: Connection, before: datetime, app_id: UUID | None, limit: int) -> int:
    """Delete up to ``limit`` notifications received before ``before`` that are done with
    (applied, stale or ignored; a pending one still waits for its user), but the newest applied
    one of each subscription chain, which tells a late older notification that it is stale; how many."""
    n, newer = store_notifications, store_notifications.alias("newer")
    newest_applied_of_chain = and_(
        n.c.status == "applied",
        n.c.original_transaction_id.is_not(None),
        ~exists().where(
            newer.c.app_id == n.c.app_id,
            newer.c.store == n.c.store,
            newer.c.original_transaction_id == n.c.original_transaction_id,
            newer.c.status == "applied",
            newer.c.signed_at > n.c.signed_at,
        ),
    )
    settled = select(n.c.id).where(
        n.c.received_at < before, n.c.status.in_(["applied", "stale", "ignored"]), ~newest_applied_of_chain
    )
    if app_id is not None:
        settled = settled.where(n.c.app_id == app_id)
    return conn.execute(delete(n).where(n.c.id.in_(settled.limit(limit)))).rowcount


def delete_refused(conn: Connection, before: datetime, app_id: UUID | None, limit: int) -> int:
    """Delete up to ``limit`` refused requests received before ``before``; how many."""
    doomed = select(refused_notifications.c.id).where(refused_notifications.c.received_at < before).limit(limit)
    if app_id is not None:
        doomed = doomed.where(refused_notifications.c.app_id == app_id)
    return conn.execute(delete(refused_notifications).where(refused_notifications.c.id.in_(doomed))).rowcount


def list_refused(conn: Connection, app_id: UUID, limit: int) -> list[dict[str, Any]]:
    query = (
        select(refused_notifications)
        .where(refused_notifications.c.app_id == app_id)
        .order_by(refused_notifications.c.received_at.desc(), refused_notifications.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
