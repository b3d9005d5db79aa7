"""SQL for the Export Analytics API: an app's users and its production ledger, a page of users at
a time, as analytics reads them."""

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


def users_page(conn: Connection, app_id: UUID, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    """The app's next profiles by id, each with when it first saw a paywall (``first_paywall_view``)."""
    query = select(*(profiles.c[name] for name in _USER_COLUMNS)).where(profiles.c.app_id == app_id)
    if after is not None:
        query = query.where(profiles.c.id > after)
    rows = [dict(row) for row in conn.execute(query.order_by(profiles.c.id).limit(limit)).mappings()]
    if rows:
        views = (
            select(paywall_views.c.profile_id, func.min(paywall_views.c.viewed_at))
            .where(paywall_views.c.profile_id.in_([row["id"] for row in rows]))
            .group_by(paywall_views.c.profile_id)
        )
        first_views = {profile_id: viewed_at for profile_id, viewed_at in conn.execute(views)}
        for row in rows:
            row["first_paywall_view"] = first_views.get(row["id"])
    return rows


def production_sales(conn: Connection, profile_ids: list[UUID]) -> list[dict[str, Any]]:
    """These profiles' production transactions (analytics leaves sandbox purchases out)."""
    query = select(*(transactions.c[name] for name in _SALE_COLUMNS)).where(
        transactions.c.profile_id.in_(profile_ids), transactions.c.environment == "Production"
    )
    return [dict(zip(_SALE_COLUMNS, row, strict=True)) for row in conn.execute(query)]
