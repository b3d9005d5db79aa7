"""The shapes of exported and imported rows. Pure: no I/O.

A transaction travels as its set-transaction body with the profile's
``customer_user_id``: nested in JSON Lines, flattened into columns in CSV
(``price_country``, ``offer_type``...). What is exported imports again as it was.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from subledger.core.dates import format_datetime
from subledger.profiles.rules import latest_attribution
from subledger.profiles.schemas import INTEGRATION_IDS
from subledger.purchases.schemas import SUBSCRIPTION_FIELDS

TRANSACTION_COLUMNS = (
    "customer_user_id",
    "profile_id",
    "purchase_type",
    "store",
    "environment",
    "store_product_id",
    "store_base_plan_id",
    "store_transaction_id",
    "store_original_transaction_id",
    "offer_category",
    "offer_type",
    "offer_id",
    "is_family_shared",
    "price_country",
    "price_currency",
    "price_value",
    "purchased_at",
    "refunded_at",
    "cancellation_reason",
    "variation_id",
    *SUBSCRIPTION_FIELDS,
)
# The profile's latest attribution, as webhook events carry it.
ATTRIBUTION_COLUMNS = (
    "status",
    "channel",
    "campaign",
    "ad_group",
    "ad_set",
    "creative",
    "network_user_id",
    "created_at",
)
PROFILE_COLUMNS = (
    "profile_id",
    "customer_user_id",
    "email",
    "first_name",
    "last_name",
    "gender",
    "birthday",
    "phone_number",
    "store",
    "store_country",
    "ip_country",
    "ip_v4_address",
    "store_account_token",
    "att_status",
    "total_revenue_usd",
    "active_access_levels",
    "created_at",
    "updated_at",
    *INTEGRATION_IDS,
    *(f"attribution_{name}" for name in ATTRIBUTION_COLUMNS),
)
EVENT_COLUMNS = (
    "profile_event_id",
    "event_type",
    "event_datetime",
    "profile_id",
    "customer_user_id",
    "created_at",
    "payload",
)
# Columns an import reads but does not record (the profile is found by customer_user_id).
NOT_RECORDED = ("profile_id",)


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, UUID):
        return str(value)
    return value


def transaction_body(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row (with the profile's customer_user_id) as an import line: the set-transaction body."""
    body = {
        "customer_user_id": row["customer_user_id"],
        "profile_id": str(row["profile_id"]),
        "purchase_type": row["purchase_type"],
        "store": row["store"],
        "environment": row["environment"],
        "store_product_id": row["store_product_id"],
        "store_base_plan_id": row["store_base_plan_id"],
        "store_transaction_id": row["store_transaction_id"],
        "store_original_transaction_id": row["store_original_transaction_id"],
        "offer": None
        if row["offer_category"] is None
        else {"category": row["offer_category"], "type": row["offer_type"], "id": row["offer_id"]},
        "is_family_shared": row["is_family_shared"],
        "price": {"country": row["price_country"], "currency": row["price_currency"], "value": row["price_value"]},
        "purchased_at": row["purchased_at"],
        "refunded_at": row["refunded_at"],
        "cancellation_reason": row["cancellation_reason"],
        "variation_id": row["variation_id"],
    }
    if row["purchase_type"] == "subscription":
        body.update({name: row[name] for name in SUBSCRIPTION_FIELDS})
    return {key: _json_value(value) for key, value in body.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        # A JSON number; exact for every price with up to 15 significant digits.
        return float(value)
    return _text(value)


def flatten(body: dict[str, Any]) -> dict[str, Any]:
    """An import line's body as CSV columns."""
    flat = {name: body.get(name) for name in TRANSACTION_COLUMNS}
    offer = body.get("offer") or {}
    price = body.get("price") or {}
    flat.update(
        offer_category=offer.get("category"),
        offer_type=offer.get("type"),
        offer_id=offer.get("id"),
        price_country=price.get("country"),
        price_currency=price.get("currency"),
        price_value=price.get("value"),
    )
    return flat


class BadRow(ValueError):
    pass


def _boolean(name: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRow(f"{name}: `{value}` is not true or false")


def unflatten(columns: dict[str, str]) -> dict[str, Any]:
    """A CSV row as an import line's body; empty cells are absent."""
    unknown = set(columns) - set(TRANSACTION_COLUMNS)
    if unknown:
        raise BadRow(f"unknown columns: {', '.join(sorted(unknown))}")
    cells = {name: value for name, value in columns.items() if value not in ("", None)}
    body: dict[str, Any] = {
        name: value
        for name, value in cells.items()
        if not name.startswith(("offer_", "price_")) and name not in ("is_family_shared", "renew_status")
    }
    for name in ("is_family_shared", "renew_status"):
        if name in cells:
            body[name] = _boolean(name, cells[name])
    if "offer_category" in cells or "offer_type" in cells:
        body["offer"] = {
            "category": cells.get("offer_category"),
            "type": cells.get("offer_type"),
            "id": cells.get("offer_id"),
        }
    price: dict[str, Any] = {"country": cells.get("price_country"), "currency": cells.get("price_currency")}
    if "price_value" in cells:
        try:
            price["value"] = Decimal(cells["price_value"])
        except InvalidOperation:
            raise BadRow(f"price_value: `{cells['price_value']}` is not a number") from None
    body["price"] = price
    return body


def split(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(customer_user_id, set-transaction body) of an import line."""
    body = {key: value for key, value in body.items() if key not in NOT_RECORDED}
    customer_user_id = body.pop("customer_user_id", None)
    if not isinstance(customer_user_id, str) or not customer_user_id:
        raise BadRow("customer_user_id is required")
    return customer_user_id, body


def profile_columns(profile: dict[str, Any], active_levels: list[str]) -> dict[str, Any]:
    columns = {name: _text(profile.get(name)) for name in PROFILE_COLUMNS}
    columns.update(profile["integration_ids"] or {})
    latest = latest_attribution(profile["attribution"])
    columns.update({f"attribution_{name}": latest.get(name) for name in ATTRIBUTION_COLUMNS})
    columns.update(profile_id=str(profile["id"]), active_access_levels=" ".join(active_levels))
    return columns
