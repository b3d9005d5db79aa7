"""SQL for virtual currencies, balances and their transactions."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, exists, func, select, tuple_, update

from subledger.core import app_config
from subledger.core.sql import insert_new, upsert
from subledger.core.tables import (
    apps,
    currency_balances,
    currency_transaction_items,
    currency_transactions,
    product_currency_grants,
    products,
    virtual_currencies,
)


def enabled(conn: Connection, app_id: UUID) -> bool:
    return bool(conn.scalar(select(apps.c.virtual_currencies).where(apps.c.id == app_id)))


def set_enabled(conn: Connection, app_id: UUID, value: bool) -> None:
    conn.execute(update(apps).where(apps.c.id == app_id).values(virtual_currencies=value))


def currencies(conn: Connection, app_id: UUID) -> dict[str, str]:
    """The app's currencies: name by code, in code order."""
    query = (
        select(virtual_currencies.c.code, virtual_currencies.c.name)
        .where(virtual_currencies.c.app_id == app_id)
        .order_by(virtual_currencies.c.code)
    )
    return {row[0]: row[1] for row in conn.execute(query)}


def insert_currency(conn: Connection, values: dict[str, Any]) -> bool:
    """False when the app has a currency of that code already."""
    return insert_new(conn, virtual_currencies, values, ["app_id", "code"]) is not None


def rename_currency(conn: Connection, app_id: UUID, code: str, name: str) -> bool:
    query = update(virtual_currencies).where(virtual_currencies.c.app_id == app_id, virtual_currencies.c.code == code)
    return conn.execute(query.values(name=name)).rowcount > 0


def currency_used(conn: Connection, app_id: UUID, code: str) -> bool:
    """Whether any transaction or product of the app names the currency."""
    in_history = (
        select(currency_transaction_items.c.transaction_id)
        .join(currency_transactions, currency_transactions.c.id == currency_transaction_items.c.transaction_id)
        .where(currency_transactions.c.app_id == app_id, currency_transaction_items.c.currency_code == code)
    )
    in_catalog = (
        select(product_currency_grants.c.product_id)
        .join(products, products.c.id == product_currency_grants.c.product_id)
        .where(products.c.app_id == app_id, product_currency_grants.c.currency_code == code)
    )
    return bool(conn.scalar(select(exists(in_history) | exists(in_catalog))))


def delete_currency(conn: Connection, app_id: UUID, code: str) -> bool:
    query = delete(virtual_currencies).where(virtual_currencies.c.app_id == app_id, virtual_currencies.c.code == code)
    return conn.execute(query).rowcount > 0


def balances(conn: Connection, profile_id: UUID) -> dict[str, int]:
    query = select(currency_balances.c.currency_code, currency_balances.c.balance).where(
        currency_balances.c.profile_id == profile_id
    )
    return {row[0]: row[1] for row in conn.execute(query)}


def save_balances(conn: Connection, profile_id: UUID, after: dict[str, int]) -> None:
    rows = [{"profile_id": profile_id, "currency_code": code, "balance": value} for code, value in after.items()]
    upsert(conn, currency_balances, rows, ["profile_id", "currency_code"], ["balance"])


def insert_transaction(conn: Connection, values: dict[str, Any], items: list[dict[str, Any]]) -> bool:
    """False when the profile has a transaction of this type from this source already."""
    if values["source"] is None:
        conn.execute(currency_transactions.insert().values(values))
    elif insert_new(conn, currency_transactions, values, ["profile_id", "source", "transaction_type"]) is None:
        return False
    conn.execute(currency_transaction_items.insert(), [{"transaction_id": values["id"], **item} for item in items])
    return True


def latest(conn: Connection, profile_id: UUID) -> datetime | None:
    """When the profile's newest transaction was made."""
    query = select(func.max(currency_transactions.c.created_at)).where(currency_transactions.c.profile_id == profile_id)
    latest_at: datetime | None = conn.scalar(query)
    return latest_at


def item_totals(conn: Connection, profile_id: UUID, source: str | None = None) -> dict[str, int]:
    """Each currency's items summed over the profile's history (only the transactions of
    ``source`` when given)."""
    query = (
        select(currency_transaction_items.c.currency_code, currency_transaction_items.c.amount)
        .join(currency_transactions, currency_transactions.c.id == currency_transaction_items.c.transaction_id)
        .where(currency_transactions.c.profile_id == profile_id)
    )
    if source is not None:
        query = query.where(currency_transactions.c.source == source)
    totals: dict[str, int] = {}
    for code, amount in conn.execute(query):
        totals[code] = totals.get(code, 0) + amount
    return totals


def history(
    conn: Connection, profile_id: UUID, currency_code: str | None, before: tuple[datetime, UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """The profile's transactions newest first, from just before ``before`` (created_at, id),
    with their items; only those touching ``currency_code`` when given."""
    query = select(currency_transactions).where(currency_transactions.c.profile_id == profile_id)
    if currency_code is not None:
        touching = select(currency_transaction_items.c.transaction_id).where(
            currency_transaction_items.c.transaction_id == currency_transactions.c.id,
            currency_transaction_items.c.currency_code == currency_code,
        )
        query = query.where(exists(touching))
    if before is not None:
        query = query.where(tuple_(currency_transactions.c.created_at, currency_transactions.c.id) < before)
    query = query.order_by(currency_transactions.c.created_at.desc(), currency_transactions.c.id.desc()).limit(limit)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    if rows:
        items = select(currency_transaction_items).where(
            currency_transaction_items.c.transaction_id.in_([row["id"] for row in rows])
        )
        by_transaction: dict[UUID, list[dict[str, Any]]] = {}
        for item in conn.execute(items.order_by(currency_transaction_items.c.currency_code)):
            by_transaction.setdefault(item.transaction_id, []).append(dict(item._mapping))
        for row in rows:
            row["items"] = by_transaction.get(row["id"], [])
    return rows


def product_exists(conn: Connection, app_id: UUID, product_id: UUID) -> bool:
    return bool(conn.scalar(select(exists().where(products.c.id == product_id, products.c.app_id == app_id))))


def set_product_grants(conn: Connection, app_id: UUID, product_id: UUID, grants: list[tuple[str, int]]) -> None:
    conn.execute(delete(product_currency_grants).where(product_currency_grants.c.product_id == product_id))
    if grants:
        rows = [{"product_id": product_id, "currency_code": code, "amount": amount} for code, amount in grants]
        conn.execute(product_currency_grants.insert(), rows)
    app_config.changed(conn, app_id)
