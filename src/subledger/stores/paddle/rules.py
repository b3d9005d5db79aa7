"""Paddle Billing's subscriptions, transactions and adjustments as ledger transactions. Pure.

A subscription (``sub_...``) is a chain: each completed transaction of it is one payment, bought
when its billing period starts and running to its end. A transaction without a subscription is
a one-time purchase. An approved refund or chargeback of a whole transaction refunds it. Amounts
are in the currency's smallest unit, as strings.
"""

import hashlib
import hmac
from datetime import datetime
from typing import Any

from subledger.core.dates import format_datetime, parse_datetime
from subledger.stores.rules import from_minor_units

STORE = "paddle"
PAID = {"completed", "paid"}  # a transaction Paddle has collected (paid: completion pending)
RENEWING = {"active", "trialing", "past_due"}
REFUNDS = {"refund", "chargeback"}
# Where a transaction says which profile it is for (checkout's custom data).
ACCOUNT_KEY = "customer_user_id"
# How far a notification's signing time may be from now: a signature older than this is a replay.
TOLERANCE_SECONDS = 300


def _when(text: str | None) -> str | None:
    return None if text is None else format_datetime(parse_datetime(text))


def price_id(obj: dict[str, Any]) -> str:
    """The price of a transaction's or subscription's first item: the product subledger knows it by."""
    found: str = obj["items"][0]["price"]["id"]
    return found


def account(obj: dict[str, Any]) -> str | None:
    """The customer_user_id a checkout put in the object's custom data, if any."""
    found = (obj.get("custom_data") or {}).get(ACCOUNT_KEY)
    return found if isinstance(found, str) and found else None


def refunded(adjustments: list[dict[str, Any]]) -> dict[str, str]:
    """When each transaction was refunded: its approved full refund or chargeback."""
    found: dict[str, datetime] = {}
    for adjustment in adjustments:
        if (
            adjustment["action"] in REFUNDS
            and adjustment["status"] == "approved"
            and adjustment.get("type") != "partial"
        ):
            moment = parse_datetime(adjustment.get("updated_at") or adjustment["created_at"])
            transaction = adjustment["transaction_id"]
            found[transaction] = min(moment, found.get(transaction, moment))
    return {transaction: format_datetime(moment) for transaction, moment in found.items()}


def _price(transaction: dict[str, Any]) -> dict[str, Any]:
    currency = transaction["currency_code"].upper()
    totals = transaction["details"]["totals"]
    country = ((transaction.get("address") or {}).get("country_code") or "US").upper()
    return {"country": country, "currency": currency, "value": from_minor_units(int(totals["grand_total"]), currency)}


def _refund(body: dict[str, Any], transaction: dict[str, Any], refunds: dict[str, str]) -> dict[str, Any]:
    if transaction["id"] in refunds:
        body |= {"refunded_at": refunds[transaction["id"]], "cancellation_reason": "refund"}
    return body


def subscription_transactions(
    subscription: dict[str, Any], transactions: list[dict[str, Any]], refunds: dict[str, str], environment: str
) -> list[dict[str, Any]]:
    """One ledger transaction per collected transaction of the subscription, oldest first."""
    cancelled = (subscription.get("scheduled_change") or {}).get("action") == "cancel"
    renews = subscription["status"] in RENEWING and not cancelled
    started = subscription.get("started_at") or subscription.get("first_billed_at") or subscription["created_at"]
    collected = sorted(
        (tx for tx in transactions if tx["status"] in PAID and tx.get("billing_period")),
        key=lambda tx: tx["billing_period"]["starts_at"],
    )
    bodies = []
    for index, transaction in enumerate(collected):
        period = transaction["billing_period"]
        body = {
            "purchase_type": "subscription",
            "store": STORE,
            "environment": environment,
            "store_product_id": price_id(transaction),
            "store_transaction_id": transaction["id"],
            "store_original_transaction_id": subscription["id"],
            "price": _price(transaction),
            "purchased_at": _when(period["starts_at"]),
            "originally_purchased_at": _when(started),
            "expires_at": _when(period["ends_at"]),
            "renew_status": renews,
        }
        if not renews and (changed := subscription.get("canceled_at") or subscription.get("updated_at")):
            body["renew_status_changed_at"] = format_datetime(max(parse_datetime(changed), parse_datetime(started)))
        if index == 0 and body["price"]["value"] == 0 and transaction["items"][0]["price"].get("trial_period"):
            body["offer"] = {"category": "introductory", "type": "free_trial", "id": None}
        bodies.append(_refund(body, transaction, refunds))
    if bodies and subscription["status"] == "past_due":
        bodies[-1]["billing_issue_detected_at"] = bodies[-1]["expires_at"]  # the renewal Paddle could not collect
    return bodies


def one_time_transaction(
    transaction: dict[str, Any], refunds: dict[str, str], environment: str
) -> dict[str, Any] | None:
    """A collected transaction without a subscription as a one-time purchase (None: not collected)."""
    if transaction["status"] not in PAID:
        return None
    body = {
        "purchase_type": "one_time_purchase",
        "store": STORE,
        "environment": environment,
        "store_product_id": price_id(transaction),
        "store_transaction_id": transaction["id"],
        "store_original_transaction_id": transaction["id"],
        "price": _price(transaction),
        "purchased_at": _when(transaction.get("billed_at") or transaction["created_at"]),
    }
    return _refund(body, transaction, refunds)


def check_signature(header: str | None, body: bytes, secret: str, now: float) -> None:
    """Check ``Paddle-Signature`` (``ts=...;h1=...``): an HMAC-SHA256 of ``ts:body`` with the
    notification secret, made within TOLERANCE_SECONDS of now. Several ``h1`` may be sent while a
    secret is rotated; one must match. ValueError saying what is wrong otherwise."""
    parts = [part.split("=", 1) for part in (header or "").split(";") if "=" in part]
    stamps = [value for name, value in parts if name.strip() == "ts"]
    signatures = [value.strip() for name, value in parts if name.strip() == "h1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise ValueError("no Paddle-Signature with a timestamp (ts) and a signature (h1)")
    stamp = stamps[0].strip()
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise ValueError(f"the signature was made at {stamp}, more than {TOLERANCE_SECONDS} s from now")
    expected = hmac.new(secret.encode(), stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise ValueError("the signature does not match the body and the notification secret")
