"""Google Play payloads -> set-transaction bodies. Pure: no I/O.

A Real-time Developer Notification only says that a purchase token changed;
its state is read from the Play Developer API (``subscriptionsv2`` for
subscriptions, ``products`` for one-time products) and recorded. Order ids
name transactions: a subscription's first order is ``GPA.1234-...-56789``,
its renewals add ``..0``, ``..1``; the first order id is the chain's original id.
"""

import base64
import binascii
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from subledger.core.dates import format_datetime, from_timestamp, parse_datetime

STORE = "play_store"
SUBSCRIPTION_TYPES = {
    1: "SUBSCRIPTION_RECOVERED",
    2: "SUBSCRIPTION_RENEWED",
    3: "SUBSCRIPTION_CANCELED",
    4: "SUBSCRIPTION_PURCHASED",
    5: "SUBSCRIPTION_ON_HOLD",
    6: "SUBSCRIPTION_IN_GRACE_PERIOD",
    7: "SUBSCRIPTION_RESTARTED",
    8: "SUBSCRIPTION_PRICE_CHANGE_CONFIRMED",
    9: "SUBSCRIPTION_DEFERRED",
    10: "SUBSCRIPTION_PAUSED",
    11: "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
    12: "SUBSCRIPTION_REVOKED",
    13: "SUBSCRIPTION_EXPIRED",
    19: "SUBSCRIPTION_PRICE_CHANGE_UPDATED",
    20: "SUBSCRIPTION_PENDING_PURCHASE_CANCELED",
}
ONE_TIME_TYPES = {1: "ONE_TIME_PRODUCT_PURCHASED", 2: "ONE_TIME_PRODUCT_CANCELED"}
BILLING_TROUBLE = {"SUBSCRIPTION_STATE_IN_GRACE_PERIOD", "SUBSCRIPTION_STATE_ON_HOLD"}
CANCELLATION_REASONS = {
    "userInitiatedCancellation": "voluntarily_cancelled",
    "systemInitiatedCancellation": "billing_error",
    "developerInitiatedCancellation": "cancelled_by_developer",
    "replacementCancellation": "upgraded",
}


def parse_push(body: bytes) -> tuple[str, dict[str, Any]]:
    """(message id, developer notification) of a Pub/Sub push body; ValueError when it is not one."""
    try:
        message = orjson.loads(body)["message"]
        data = orjson.loads(base64.b64decode(message["data"], validate=True))
        message_id = message.get("messageId") or message["message_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as error:
        raise ValueError(f"not a Pub/Sub push of a developer notification ({type(error).__name__})") from None
    if not isinstance(data, dict) or not isinstance(message_id, str):
        raise ValueError("not a Pub/Sub push of a developer notification")
    return message_id, data


def original_order(order_id: str) -> str:
    return order_id.split("..")[0]


def _millis(value: str | int) -> datetime:
    return from_timestamp(int(value) / 1000)


def event_time(data: dict[str, Any]) -> datetime:
    return _millis(data["eventTimeMillis"])


def _money(price: dict[str, Any]) -> Decimal:
    return Decimal(price.get("units") or 0) + Decimal(price.get("nanos") or 0) / 1_000_000_000


def subscription_body(purchase: dict[str, Any], kind: str, at: datetime) -> dict[str, Any] | None:
    """A ``subscriptionsv2`` purchase as its latest order's transaction (None while it is pending).

    ``kind`` is the notification's type and ``at`` its time: a renewal's order is
    bought then, a billing problem is detected then.
    """
    line = purchase["lineItems"][0]
    order = purchase.get("latestOrderId") or line.get("latestSuccessfulOrderId")
    if not order or purchase.get("subscriptionState") == "SUBSCRIPTION_STATE_PENDING":
        return None
    started = parse_datetime(purchase["startTime"])
    expires = parse_datetime(line["expiryTime"])
    original = original_order(order)
    # The API does not date a renewal's order: it is the one the renewal notice speaks of.
    purchased = started if order == original else max(started, min(at, expires - timedelta(seconds=1)))
    plan = line.get("autoRenewingPlan") or {}
    price = plan.get("recurringPrice") or {}
    offer_details = line.get("offerDetails") or {}
    phase = line.get("offerPhase") or {}
    value = _money(price)
    offer = None
    if "freeTrial" in phase:
        value, offer = (
            Decimal(0),
            {"category": "introductory", "type": "free_trial", "id": offer_details.get("offerId")},
        )
    elif "introductoryPrice" in phase:
        offer = {"category": "introductory", "type": "pay_as_you_go", "id": offer_details.get("offerId")}
    body: dict[str, Any] = {
        "purchase_type": "subscription",
        "store": STORE,
        "environment": "Sandbox" if "testPurchase" in purchase else "Production",
        "store_product_id": line["productId"],
        "store_base_plan_id": offer_details.get("basePlanId"),
        "store_transaction_id": order,
        "store_original_transaction_id": original,
        "offer": offer,
        "price": {
            "country": purchase.get("regionCode") or "US",
            "currency": price.get("currencyCode") or "USD",
            "value": float(value),
        },
        "purchased_at": format_datetime(purchased),
        "originally_purchased_at": format_datetime(started),
        "expires_at": format_datetime(expires),
        "renew_status": bool(plan.get("autoRenewEnabled")),
    }
    cancelled = purchase.get("canceledStateContext") or {}
    for key, reason in CANCELLATION_REASONS.items():
        if key in cancelled:
            body["cancellation_reason"] = reason
            if cancel_time := (cancelled[key] or {}).get("cancelTime"):
                body["renew_status_changed_at"] = format_datetime(max(parse_datetime(cancel_time), started))
    state = purchase.get("subscriptionState")
    if state in BILLING_TROUBLE and kind in ("SUBSCRIPTION_IN_GRACE_PERIOD", "SUBSCRIPTION_ON_HOLD"):
        body["billing_issue_detected_at"] = format_datetime(max(at, purchased))
        if state == "SUBSCRIPTION_STATE_IN_GRACE_PERIOD":
            body["grace_period_expires_at"] = format_datetime(max(expires, at, purchased))
    elif state == "SUBSCRIPTION_STATE_ACTIVE":
        body["billing_issue_detected_at"] = None  # recovered, or never in trouble
        body["grace_period_expires_at"] = None
    if state == "SUBSCRIPTION_STATE_PAUSED":
        body["paused_at"] = format_datetime(max(at, purchased))
    if kind == "SUBSCRIPTION_DEFERRED":  # the developer put the renewal off: the expiry moved on
        body["deferred_at"] = format_datetime(max(at, purchased))
    return body


def product_body(purchase: dict[str, Any], product_id: str, price: dict[str, Any]) -> dict[str, Any] | None:
    """A ``products`` purchase (one-time product) as a transaction; None unless it is purchased.

    ``price`` is the product's price in the buyer's region: ``{"priceMicros", "currency"}``.
    """
    if purchase.get("purchaseState", 0) != 0 or not purchase.get("orderId"):
        return None
    return {
        "purchase_type": "one_time_purchase",
        "store": STORE,
        "environment": "Sandbox" if purchase.get("purchaseType") == 0 else "Production",
        "store_product_id": product_id,
        "store_transaction_id": purchase["orderId"],
        "store_original_transaction_id": purchase["orderId"],
        "price": {
            "country": purchase.get("regionCode") or "US",
            "currency": price["currency"],
            "value": float(Decimal(price["priceMicros"]) / 1_000_000),
        },
        "purchased_at": format_datetime(_millis(purchase["purchaseTimeMillis"])),
    }


def subscription_account(purchase: dict[str, Any]) -> str | None:
    return (purchase.get("externalAccountIdentifiers") or {}).get("obfuscatedExternalAccountId")
