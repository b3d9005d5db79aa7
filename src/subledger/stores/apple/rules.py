"""App Store payloads (verified and decoded) -> set-transaction bodies. Pure: no I/O.

A notification carries the state of one transaction (``signedTransactionInfo``)
and, for subscriptions, of its renewal (``signedRenewalInfo``), as of when
Apple signed it. That state is laid over the ledger: the transaction is
recorded or updated, and the notification's type adds what the state alone
does not date (when a billing issue was detected, when auto-renew changed).
"""

from dataclasses import replace
from typing import Any

import pycountry

from subledger.core.dates import format_datetime, from_timestamp
from subledger.stores.rules import Notification

STORE = "app_store"
# A customer asked Apple for a refund, and Apple asks what the app knows of the purchase.
CONSUMPTION_REQUEST = "CONSUMPTION_REQUEST"
# Notifications that tell nothing the ledger keeps: answered, recorded, not applied.
INFORMATIONAL = {
    "TEST",
    CONSUMPTION_REQUEST,  # answered by the Refund Saver before it is recorded
    "REFUND_DECLINED",
    "PRICE_INCREASE",
    "RENEWAL_EXTENSION",  # the summary of a mass extension; each extended one comes as RENEWAL_EXTENDED
    "EXTERNAL_PURCHASE_TOKEN",
    "METADATA_UPDATE",
    "MIGRATION",
    "PRICE_CHANGE",
    "RESCIND_CONSENT",
}
OFFER_CATEGORIES = {1: "introductory", 2: "promotional", 3: "offer_code", 4: "win_back"}
OFFER_TYPES = {"FREE_TRIAL": "free_trial", "PAY_AS_YOU_GO": "pay_as_you_go", "PAY_UP_FRONT": "pay_up_front"}
EXPIRATION_REASONS = {
    1: "voluntarily_cancelled",
    2: "billing_error",
    3: "price_increase",
    4: "product_was_not_available",
    5: "unknown",
}
AUTO_RENEWABLE = "Auto-Renewable Subscription"


def moment(milliseconds: int | None) -> str | None:
    return None if milliseconds is None else format_datetime(from_timestamp(milliseconds / 1000))


def _country(storefront: str | None) -> str:
    """Apple's storefront is an ISO 3166 alpha-3 code."""
    found = pycountry.countries.get(alpha_3=storefront) if storefront else None
    return found.alpha_2 if found else "US"


def _offer(tx: dict[str, Any]) -> dict[str, Any] | None:
    category = OFFER_CATEGORIES.get(tx.get("offerType") or 0)  # 0: no offer type
    if category is None:
        return None
    kind = OFFER_TYPES.get(tx.get("offerDiscountType") or "", "free_trial" if tx.get("price") == 0 else "unknown")
    return {"category": category, "type": kind, "id": tx.get("offerIdentifier")}


def transaction_body(
    tx: dict[str, Any],
    renewal: dict[str, Any] | None = None,
    kind: str | None = None,
    signed_at: int | None = None,
) -> dict[str, Any]:
    """A transaction's set-transaction body.

    ``renewal`` (when Apple sent it) decides ``renew_status`` and the billing
    state; without it ``renew_status`` is presumed on until expiry. ``kind``
    (``TYPE`` or ``TYPE/SUBTYPE``) and ``signed_at`` (ms) date the changes the
    notification reports.
    """
    family_shared = tx.get("inAppOwnershipType") == "FAMILY_SHARED"
    body: dict[str, Any] = {
        "purchase_type": "subscription" if tx.get("type") == AUTO_RENEWABLE else "one_time_purchase",
        "store": STORE,
        "environment": "Production" if tx.get("environment") == "Production" else "Sandbox",
        "store_product_id": tx["productId"],
        "store_transaction_id": tx["transactionId"],
        "store_original_transaction_id": tx.get("originalTransactionId") or tx["transactionId"],
        "offer": _offer(tx),
        "is_family_shared": family_shared,
        "price": {
            "country": _country(tx.get("storefront")),
            "currency": tx.get("currency") or "USD",
            # Apple counts in thousandths of the currency's unit; a family member pays nothing.
            "value": 0 if family_shared else (tx.get("price") or 0) / 1000,
        },
        "purchased_at": moment(tx["purchaseDate"]),
        # Apple's account of revocation is complete: no revocationDate means not refunded (or reversed).
        "refunded_at": moment(tx.get("revocationDate")),
    }
    if body["refunded_at"] is not None:
        body["cancellation_reason"] = "refund"
    if body["purchase_type"] == "subscription":
        body.update(_subscription_fields(tx, renewal, kind or "", signed_at or tx.get("signedDate")))
    return body


def _subscription_fields(
    tx: dict[str, Any], renewal: dict[str, Any] | None, kind: str, signed_at: int | None
) -> dict[str, Any]:
    purchased = tx["purchaseDate"]
    expires = tx.get("expiresDate")
    fields: dict[str, Any] = {
        "originally_purchased_at": moment(min(tx.get("originalPurchaseDate") or purchased, purchased)),
        "expires_at": moment(expires),
    }
    if renewal is None:
        fields["renew_status"] = expires is None or signed_at is None or expires > signed_at
        return fields
    fields["renew_status"] = renewal.get("autoRenewStatus") == 1
    if kind.startswith("DID_CHANGE_RENEWAL_STATUS"):
        fields["renew_status_changed_at"] = moment(renewal.get("signedDate") or signed_at)
    intent = renewal.get("expirationIntent")
    if intent is not None and tx.get("revocationDate") is None:
        fields["cancellation_reason"] = EXPIRATION_REASONS.get(intent, "unknown")
    if kind.startswith("DID_FAIL_TO_RENEW"):
        fields["billing_issue_detected_at"] = moment(max(signed_at or purchased, purchased))
        if renewal.get("gracePeriodExpiresDate") is not None:
            fields["grace_period_expires_at"] = moment(renewal["gracePeriodExpiresDate"])
    elif kind.startswith("DID_RENEW"):
        fields["billing_issue_detected_at"] = None  # a renewal ends any billing trouble
        fields["grace_period_expires_at"] = None
    elif kind.startswith("RENEWAL_EXTENDED"):  # the developer put the renewal off: the expiry moved on
        fields["deferred_at"] = moment(max(signed_at or purchased, purchased))
    return fields


def notification(payload: dict[str, Any], tx: dict[str, Any] | None, renewal: dict[str, Any] | None) -> Notification:
    """An App Store Server Notification V2 (payload, and its transaction and renewal info decoded)."""
    kind = payload["notificationType"] + (f"/{payload['subtype']}" if payload.get("subtype") else "")
    found = Notification(
        store=STORE,
        notification_id=payload["notificationUUID"],
        kind=kind,
        signed_at=from_timestamp(payload["signedDate"] / 1000),
    )
    if tx is None or payload["notificationType"] in INFORMATIONAL:
        return found
    return replace(  # built anew, so that the account is checked
        found,
        original_transaction_id=tx.get("originalTransactionId") or tx["transactionId"],
        account=tx.get("appAccountToken") or (renewal or {}).get("appAccountToken"),
        transactions=[transaction_body(tx, renewal, kind, payload["signedDate"])],
    )


def posted(tx: dict[str, Any]) -> Notification:
    """A StoreKit transaction the app's server posts for a profile."""
    return Notification(
        store=STORE,
        notification_id=tx["transactionId"],
        kind="STOREKIT_TRANSACTION",
        signed_at=from_timestamp(tx["signedDate"] / 1000),
        original_transaction_id=tx.get("originalTransactionId") or tx["transactionId"],
        account=tx.get("appAccountToken"),
        transactions=[transaction_body(tx)],
    )
