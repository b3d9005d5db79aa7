"""SQL for the Refund Saver's settings and its audit log of consumption requests."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from subledger.core.sql import insert_new, upsert
from subledger.core.tables import consumption_requests, refund_saver_apps, refund_saver_profiles


def app_settings(conn: Connection, app_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(select(refund_saver_apps).where(refund_saver_apps.c.app_id == app_id)).first()
    return dict(row._mapping) if row else None


def save_app_settings(conn: Connection, values: dict[str, Any]) -> None:
    upsert(
        conn, refund_saver_apps, values, ["app_id"], ["enabled", "default_preference", "consent_policy", "updated_at"]
    )


def profile_settings(conn: Connection, profile_id: UUID) -> dict[str, Any] | None:
    query = select(refund_saver_profiles).where(refund_saver_profiles.c.profile_id == profile_id)
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def save_profile_settings(conn: Connection, values: dict[str, Any]) -> None:
    upsert(conn, refund_saver_profiles, values, ["profile_id"], ["custom_preference", "consent", "updated_at"])


def earlier_requests(conn: Connection, app_id: UUID, store_transaction_id: str) -> int:
    """How many consumption requests for this transaction were received before."""
    query = select(func.count()).where(
        consumption_requests.c.app_id == app_id, consumption_requests.c.store_transaction_id == store_transaction_id
    )
    return conn.scalar(query) or 0


def record_request(conn: Connection, values: dict[str, Any]) -> None:
    """Keep a consumption request and its answer, once (the same notification again is not kept)."""
    insert_new(conn, consumption_requests, values, ["app_id", "notification_id"])


def app_requests(conn: Connection, app_id: UUID, limit: int) -> list[dict[str, Any]]:
    query = (
        select(consumption_requests)
        .where(consumption_requests.c.app_id == app_id)
        .order_by(consumption_requests.c.received_at.desc(), consumption_requests.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
