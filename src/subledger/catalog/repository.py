"""SQL for access levels, products and exchange rates."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from subledger.core import app_config
from subledger.core.sql import upsert
from subledger.core.tables import (
    access_grants,
    access_levels,
    exchange_rates,
    ledger_pricing,
    product_currency_grants,
    products,
    transactions,
)


def insert_access_level(conn: Connection, app_id: UUID, level_id: str, now: datetime) -> None:
    conn.execute(access_levels.insert().values(app_id=app_id, id=level_id, created_at=now))
    app_config.changed(conn, app_id)


def access_level_ids(conn: Connection, app_id: UUID) -> list[str]:
    query = select(access_levels.c.id).where(access_levels.c.app_id == app_id).order_by(access_levels.c.id)
    return list(conn.scalars(query))


def list_access_levels(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    query = select(access_levels).where(access_levels.c.app_id == app_id).order_by(access_levels.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def access_level_exists(conn: Connection, app_id: UUID, level_id: str) -> bool:
    query = select(access_levels.c.id).where(access_levels.c.app_id == app_id, access_levels.c.id == level_id)
    return conn.execute(query).first() is not None


def delete_access_level(conn: Connection, app_id: UUID, level_id: str) -> int:
    result = conn.execute(delete(access_levels).where(access_levels.c.app_id == app_id, access_levels.c.id == level_id))
    app_config.changed(conn, app_id)
    return result.rowcount


def access_level_granted(conn: Connection, app_id: UUID, level_id: str) -> bool:
    query = select(access_grants.c.id).where(
        access_grants.c.app_id == app_id, access_grants.c.access_level_id == level_id
    )
    return conn.execute(query.limit(1)).first() is not None


def products_unlocking(conn: Connection, app_id: UUID, level_id: str) -> list[str]:
    query = select(products.c.store_product_id).where(
        products.c.app_id == app_id, products.c.access_level_id == level_id
    )
    return list(conn.scalars(query))


def insert_product(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(products.insert().values(values))
    app_config.changed(conn, values["app_id"])


_PRODUCTS = (
    select(products)
    .where(products.c.app_id == bindparam("app_id"))
    .order_by(products.c.store, products.c.store_product_id, products.c.store_base_plan_id)
)
_RATES = select(exchange_rates).order_by(exchange_rates.c.currency)


def list_products(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(_PRODUCTS, {"app_id": app_id})]


def currency_grants(conn: Connection, app_id: UUID) -> dict[UUID, list[tuple[str, int]]]:
    """What each of the app's products credits when bought, by product id."""
    query = (
        select(product_currency_grants)
        .join(products, products.c.id == product_currency_grants.c.product_id)
        .where(products.c.app_id == app_id)
        .order_by(product_currency_grants.c.currency_code)
    )
    grants: dict[UUID, list[tuple[str, int]]] = {}
    for row in conn.execute(query):
        grants.setdefault(row.product_id, []).append((row.currency_code, row.amount))
    return grants


def product_configured(conn: Connection, app_id: UUID, store: str, store_product_id: str, base_plan: str) -> bool:
    query = select(products.c.id).where(
        products.c.app_id == app_id,
        products.c.store == store,
        products.c.store_product_id == store_product_id,
        products.c.store_base_plan_id == base_plan,
    )
    return conn.execute(query).first() is not None


def find_product(conn: Connection, app_id: UUID, product_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(select(products).where(products.c.app_id == app_id, products.c.id == product_id)).first()
    return dict(row._mapping) if row else None


def delete_product(conn: Connection, app_id: UUID, product_id: UUID) -> None:
    conn.execute(delete(products).where(products.c.app_id == app_id, products.c.id == product_id))
    app_config.changed(conn, app_id)


def loaded_rates(conn: Connection) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(_RATES)]


def largest_prices(conn: Connection, currencies: list[str]) -> list[tuple[str, Decimal]]:
    """(currency, the largest price of a transaction in it) for those of ``currencies`` the ledger
    holds, every app's (a scan of the ledger: rates are loaded seldom)."""
    query = (
        select(transactions.c.price_currency, func.max(transactions.c.price_value))
        .where(transactions.c.price_currency.in_(currencies))
        .group_by(transactions.c.price_currency)
    )
    return [(currency, largest) for currency, largest in conn.execute(query)]


def upsert_rates(conn: Connection, rows: list[dict[str, Any]]) -> None:
    upsert(conn, exchange_rates, rows, keys=["currency"], update=["usd_per_unit", "as_of"])
    app_config.changed(conn)  # rates are every app's


def ledger_pricing_row(conn: Connection) -> dict[str, Any] | None:
    """The record of the rates the ledger is priced at; None before the first."""
    row = conn.execute(select(ledger_pricing)).first()
    return dict(row._mapping) if row else None


def set_ledger_pricing(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(delete(ledger_pricing))
    conn.execute(insert(ledger_pricing), values)
    app_config.changed(conn)  # every process reads the pricing afresh
