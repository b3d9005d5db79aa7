"""SQL for paywalls, audiences, A/B tests, placements and views."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, delete, func, select, update

from subledger.core.sql import upsert
from subledger.core.tables import ab_tests, audiences, paywall_views, paywalls, placements, transactions


def _rows(conn: Connection, query: Select[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


def insert_paywall(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(paywalls.insert(), values)


def app_paywalls(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return _rows(conn, select(paywalls).where(paywalls.c.app_id == app_id).order_by(paywalls.c.created_at))


def count_paywalls(conn: Connection, app_id: UUID) -> int:
    return conn.scalar(select(func.count()).select_from(paywalls).where(paywalls.c.app_id == app_id)) or 0


def paywalls_page(conn: Connection, app_id: UUID, offset: int, limit: int) -> list[dict[str, Any]]:
    """The app's paywalls from ``offset`` on, oldest first."""
    query = (
        select(paywalls)
        .where(paywalls.c.app_id == app_id)
        .order_by(paywalls.c.created_at, paywalls.c.id)
        .offset(offset)
        .limit(limit)
    )
    return _rows(conn, query)


def find_paywall(conn: Connection, app_id: UUID, paywall_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(select(paywalls).where(paywalls.c.app_id == app_id, paywalls.c.id == paywall_id)).first()
    return dict(row._mapping) if row else None


def update_paywall(conn: Connection, paywall_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(paywalls).where(paywalls.c.id == paywall_id).values(values))


def insert_audience(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(audiences.insert(), values)


def app_audiences(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return _rows(conn, select(audiences).where(audiences.c.app_id == app_id).order_by(audiences.c.id))


def delete_audience(conn: Connection, app_id: UUID, audience_id: str) -> int:
    return conn.execute(delete(audiences).where(audiences.c.app_id == app_id, audiences.c.id == audience_id)).rowcount


def insert_ab_test(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(ab_tests.insert(), values)


def app_ab_tests(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return _rows(conn, select(ab_tests).where(ab_tests.c.app_id == app_id).order_by(ab_tests.c.created_at))


def save_placement(conn: Connection, values: dict[str, Any]) -> None:
    upsert(conn, placements, values, keys=["app_id", "id"], update=["targets", "updated_at"])


def app_placements(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return _rows(conn, select(placements).where(placements.c.app_id == app_id).order_by(placements.c.id))


def insert_view(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(paywall_views.insert(), values)


def views_by_variation(conn: Connection, app_id: UUID) -> dict[str, tuple[int, int]]:
    """variation_id -> (views, distinct viewers)."""
    query = (
        select(paywall_views.c.variation_id, func.count(), func.count(paywall_views.c.profile_id.distinct()))
        .where(paywall_views.c.app_id == app_id)
        .group_by(paywall_views.c.variation_id)
    )
    return {str(variation): (views, viewers) for variation, views, viewers in conn.execute(query)}


def attributed_transactions(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    """The app's transactions that name a variation."""
    query = select(
        transactions.c.variation_id,
        transactions.c.profile_id,
        transactions.c.price_value,
        transactions.c.price_currency,
        transactions.c.offer_type,
        transactions.c.refunded_at,
    ).where(transactions.c.app_id == app_id, transactions.c.variation_id.is_not(None))
    return _rows(conn, query)
