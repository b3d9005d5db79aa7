"""SQL for analytics: the ledger rows metrics read, profile counts, export pages."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from subledger.core.tables import events, profiles, transactions

METRIC_COLUMNS = [
    transactions.c.profile_id,
    transactions.c.purchase_type,
    transactions.c.store,
    transactions.c.store_product_id,
    transactions.c.store_base_plan_id,
    transactions.c.store_original_transaction_id,
    transactions.c.offer_type,
    transactions.c.price_value,
    transactions.c.price_currency,
    transactions.c.purchased_at,
    transactions.c.expires_at,
    transactions.c.refunded_at,
]


def metric_rows(
    conn: Connection,
    app_id: UUID,
    until: datetime,
    environment: str | None,
    store: str | None,
    country: str | None,
    product: str | None,
) -> list:
    """The app's transactions bought before ``until`` that match the filters (rows with attribute access)."""
    query = select(*METRIC_COLUMNS).where(transactions.c.app_id == app_id, transactions.c.purchased_at < until)
    for column, value in (
        (transactions.c.environment, environment),
        (transactions.c.store, store),
        (transactions.c.price_country, country),
        (transactions.c.store_product_id, product),
    ):
        if value is not None:
            query = query.where(column == value)
    return conn.execute(query).all()  # named tuples: fetching rows as dicts would cost as much as the metrics


def profiles_before(conn: Connection, app_id: UUID, moment: datetime) -> int:
    query = (
        select(func.count()).select_from(profiles).where(profiles.c.app_id == app_id, profiles.c.created_at < moment)
    )
    return conn.execute(query).scalar()


def profiles_created(conn: Connection, app_id: UUID, start: datetime, end: datetime) -> list[datetime]:
    """When the app's profiles created in [start, end) were created, in order."""
    query = (
        select(profiles.c.created_at)
        .where(profiles.c.app_id == app_id, profiles.c.created_at >= start, profiles.c.created_at < end)
        .order_by(profiles.c.created_at)
    )
    return list(conn.execute(query).scalars())


def profiles_page(conn: Connection, app_id: UUID, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    query = select(profiles).where(profiles.c.app_id == app_id).order_by(profiles.c.id).limit(limit)
    if after is not None:
        query = query.where(profiles.c.id > after)
    return [dict(row._mapping) for row in conn.execute(query)]


def transactions_page(conn: Connection, app_id: UUID, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    """Transactions with their profile's customer_user_id, in id order."""
    query = (
        select(transactions, profiles.c.customer_user_id)
        .join(profiles, profiles.c.id == transactions.c.profile_id)
        .where(transactions.c.app_id == app_id)
        .order_by(transactions.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(transactions.c.id > after)
    return [dict(row._mapping) for row in conn.execute(query)]


def count(conn: Connection, table_name: str, app_id: UUID) -> int:
    table = {"profiles": profiles, "transactions": transactions, "events": events}[table_name]
    return conn.execute(select(func.count()).select_from(table).where(table.c.app_id == app_id)).scalar()
