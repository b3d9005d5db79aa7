"""SQL for the Export Analytics API: an app's users and its production ledger, as analytics reads them."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from subledger.core.tables import paywall_views, profiles, transactions

_USER_COLUMNS = ("id", "created_at", "attribution", "store", "store_country", "ip_country")
_SALE_COLUMNS = (
    "profile_id",
    "purchase_type",
    "store",
    "store_product_id",
    "store_base_plan_id",
    "store_transaction_id",
    "store_original_transaction_id",
    "originally_purchased_at",
    "offer_category",
    "offer_type",
    "offer_id",
    "price_country",
    "price_currency",
    "price_value",
    "purchased_at",
    "expires_at",
    "refunded_at",
    "renew_status",
    "renew_status_changed_at",
    "billing_issue_detected_at",
    "grace_period_expires_at",
)


def users(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    """The app's profiles, each with when it first saw a paywall (``first_paywall_view``)."""
    views = (
        select(paywall_views.c.profile_id, func.min(paywall_views.c.viewed_at).label("first_paywall_view"))
        .where(paywall_views.c.app_id == app_id)
        .group_by(paywall_views.c.profile_id)
        .subquery()
    )
    query = (
        select(*(profiles.c[name] for name in _USER_COLUMNS), views.c.first_paywall_view)
        .outerjoin(views, views.c.profile_id == profiles.c.id)
        .where(profiles.c.app_id == app_id)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def production_sales(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    """The app's production transactions (analytics leaves sandbox purchases out)."""
    query = select(*(transactions.c[name] for name in _SALE_COLUMNS)).where(
        transactions.c.app_id == app_id, transactions.c.environment == "Production"
    )
    return [dict(row) for row in conn.execute(query).mappings()]
