"""SQL for the ledger: transactions and access grants, and the derived profile columns."""

from collections import defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, select, update

from subledger.core.prepared import Prepared
from subledger.core.sql import insert_new
from subledger.core.tables import access_grants, profiles, transactions


def find_transaction(conn: Connection, app_id: UUID, store: str, store_transaction_id: str) -> dict[str, Any] | None:
    params = {"app_id": app_id, "store": store, "store_transaction_id": store_transaction_id}
    return _FIND_TRANSACTION.first(conn, params)


def insert_transaction(conn: Connection, values: dict[str, Any]) -> dict[str, Any] | None:
    """Insert a transaction unless the app has it already (for any profile): the row as stored, or None."""
    return insert_new(conn, transactions, values, ["app_id", "store", "store_transaction_id"])


# Built once: the SET clause is compiled (and cached) for the columns each call passes.
_UPDATE_TRANSACTION = Prepared(
    update(transactions).where(transactions.c.id == bindparam("transaction_key")).returning(*transactions.c)
)


def update_transaction(conn: Connection, transaction_id: UUID, values: dict[str, Any]) -> dict[str, Any]:
    """Update a transaction: the row as stored afterwards."""
    (row,) = _UPDATE_TRANSACTION.rows(conn, {"transaction_key": transaction_id, **values})
    return row


def chain_owner(conn: Connection, app_id: UUID, store: str, original_transaction_id: str) -> UUID | None:
    query = select(transactions.c.profile_id).where(
        transactions.c.app_id == app_id,
        transactions.c.store == store,
        transactions.c.store_original_transaction_id == original_transaction_id,
    )
    return conn.execute(query.limit(1)).scalar()


_PROFILE_TRANSACTIONS = Prepared(select(transactions).where(transactions.c.profile_id == bindparam("profile_id")))
_PROFILE_GRANTS = Prepared(select(access_grants).where(access_grants.c.profile_id == bindparam("profile_id")))
_FIND_TRANSACTION = Prepared(
    select(transactions).where(
        transactions.c.app_id == bindparam("app_id"),
        transactions.c.store == bindparam("store"),
        transactions.c.store_transaction_id == bindparam("store_transaction_id"),
    )
)


def profile_transactions(conn: Connection, profile_id: UUID) -> list[dict[str, Any]]:
    return _PROFILE_TRANSACTIONS.rows(conn, {"profile_id": profile_id})


_INSERT_GRANT = Prepared(access_grants.insert())


def insert_grant(conn: Connection, values: dict[str, Any]) -> None:
    _INSERT_GRANT.rows(conn, values)


def profile_grants(conn: Connection, profile_id: UUID) -> list[dict[str, Any]]:
    return _PROFILE_GRANTS.rows(conn, {"profile_id": profile_id})


def profiles_buying(conn: Connection, app_id: UUID, store: str, store_product_id: str) -> list[UUID]:
    """Profiles with a transaction of this store product, in a fixed (lock) order."""
    query = (
        select(transactions.c.profile_id)
        .where(
            transactions.c.app_id == app_id,
            transactions.c.store == store,
            transactions.c.store_product_id == store_product_id,
        )
        .distinct()
        .order_by(transactions.c.profile_id)
    )
    return list(conn.scalars(query))


def profile_ids(conn: Connection, app_id: UUID | None, after: UUID | None, limit: int) -> list[tuple[UUID, UUID]]:
    """A page of (app_id, profile_id), in profile_id order, for walking every profile."""
    query = select(profiles.c.app_id, profiles.c.id).order_by(profiles.c.id).limit(limit)
    if app_id is not None:
        query = query.where(profiles.c.app_id == app_id)
    if after is not None:
        query = query.where(profiles.c.id > after)
    return [tuple(row) for row in conn.execute(query)]


def hold_off_writes(conn: Connection) -> None:
    """Make every write to a profile wait for the caller's transaction; reads go on (on SQLite
    the write transaction already holds the one database lock). A caller that also changes
    apps' configuration does that first, as such a change does before the profiles it re-derives."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE profiles IN EXCLUSIVE MODE")


def revenues(conn: Connection, profile_ids: list[UUID]) -> tuple[dict[UUID, Decimal], dict[UUID, list[dict[str, Any]]]]:
    """These profiles' stored total_revenue_usd, and the price columns of their transactions."""
    stored = dict(
        conn.execute(select(profiles.c.id, profiles.c.total_revenue_usd).where(profiles.c.id.in_(profile_ids))).all()
    )
    priced = select(
        transactions.c.profile_id,
        transactions.c.price_value,
        transactions.c.price_currency,
        transactions.c.offer_type,
        transactions.c.refunded_at,
    ).where(transactions.c.profile_id.in_(profile_ids))
    ledgers: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute(priced).mappings():
        ledgers[row["profile_id"]].append(dict(row))
    return stored, ledgers


_SET_REVENUE = (
    update(profiles).where(profiles.c.id == bindparam("profile_key")).values(total_revenue_usd=bindparam("total"))
)


def set_revenues(conn: Connection, totals: dict[UUID, Decimal]) -> None:
    if totals:
        conn.execute(_SET_REVENUE, [{"profile_key": key, "total": total} for key, total in totals.items()])


def profiles_priced_before(conn: Connection, generation: int, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    """Locked, in id order: the next ``limit`` profiles after ``after`` whose USD figures were
    computed at a generation of exchange rates before ``generation``."""
    query = (
        select(profiles.c.id, profiles.c.app_id, profiles.c.total_revenue_usd)
        .where(profiles.c.rates_generation < generation)
        .order_by(profiles.c.id)
        .limit(limit)
        .with_for_update()
    )
    if after is not None:
        query = query.where(profiles.c.id > after)
    return [dict(row) for row in conn.execute(query).mappings()]


def any_priced_before(conn: Connection, generation: int) -> bool:
    """Whether any profile's USD figures were computed at a generation of exchange rates before
    ``generation``."""
    query = select(profiles.c.id).where(profiles.c.rates_generation < generation).limit(1)
    return conn.execute(query).first() is not None


def paying_in(conn: Connection, profile_ids: list[UUID], currencies: set[str]) -> set[UUID]:
    """Those of these profiles with a transaction in one of ``currencies``."""
    query = select(transactions.c.profile_id).where(
        transactions.c.profile_id.in_(profile_ids), transactions.c.price_currency.in_(currencies)
    )
    return set(conn.execute(query.distinct()).scalars())


def set_rates_generation(conn: Connection, profile_ids: list[UUID], generation: int) -> None:
    if profile_ids:
        query = update(profiles).where(profiles.c.id.in_(profile_ids)).values(rates_generation=generation)
        conn.execute(query)


_REPRICED = (
    update(profiles)
    .where(profiles.c.id == bindparam("profile_key"))
    .values(total_revenue_usd=bindparam("total"), rates_generation=bindparam("generation"))
)


def set_repriced(conn: Connection, totals: dict[UUID, Decimal], generation: int) -> None:
    """Set these profiles' total revenue ({profile_id: total}), computed at ``generation``."""
    values = [{"profile_key": key, "total": total, "generation": generation} for key, total in totals.items()]
    conn.execute(_REPRICED, values)
