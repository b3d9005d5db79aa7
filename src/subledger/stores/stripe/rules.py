"""Stripe objects -> set-transaction bodies. Pure: no I/O.

A subscription's paid invoices are its chain: each is one transaction (the
invoice id), the subscription id is the original transaction id, and the
product is the Stripe price id. A payment intent is a one-time purchase.
"""

from typing import Any

from subledger.core.dates import format_datetime, from_timestamp
from subledger.stores.rules import from_minor_units

STORE = "stripe"
RENEWING = {"active", "trialing", "past_due"}
BILLING_TROUBLE = {"past_due", "unpaid"}
# The metadata key (on the subscription, payment intent, checkout session or customer) naming the profile.
ACCOUNT_KEY = "customer_user_id"
# Where the profile of a Stripe purchase is read from, one source for the whole app (no fallback,
# as the reference's "Profile creation behavior"): the metadata's customer_user_id, the Stripe
# customer's email, or a checkout session's client_reference_id (Payment Links).
PROFILE_SOURCES = ("metadata", "email", "client_reference_id")
# The metadata key of a payment intent naming the product bought.
PRODUCT_KEY = "product_id"
PAYMENT_PRODUCT = "stripe_payment_intent"


def _when(seconds: int | None) -> str | None:
    return None if seconds is None else format_datetime(from_timestamp(seconds))


def _environment(obj: dict[str, Any]) -> str:
    return "Production" if obj.get("livemode") else "Sandbox"


def _country(obj: dict[str, Any]) -> str:
    """Stripe objects rarely say where the buyer is; the US is recorded then."""
    details = obj.get("customer_address") or (obj.get("shipping") or {}).get("address") or {}
    return (details.get("country") or "US").upper()


def line_start(invoice: dict[str, Any]) -> int:
    start: int = invoice["lines"]["data"][0]["period"]["start"]
    return start


def subscription_of(obj: dict[str, Any]) -> str | None:
    """The subscription an invoice, payment intent or subscription belongs to (the id
    sits in different places across Stripe API versions)."""
    if obj.get("object") == "subscription":
        subscription: str = obj["id"]
        return subscription
    found = obj.get("subscription") or ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if found is None and isinstance(obj.get("invoice"), dict):
        return subscription_of(obj["invoice"])
    return str(found["id"]) if isinstance(found, dict) else found


def refunded_at(charge: dict[str, Any], default: int) -> str:
    """When a charge was refunded: its latest refund, else when Stripe told."""
    refunds = (charge.get("refunds") or {}).get("data") or []
    return format_datetime(from_timestamp(max((refund["created"] for refund in refunds), default=default)))


def subscription_transactions(subscription: dict[str, Any], invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One transaction per paid invoice of the subscription, oldest first."""
    renews = subscription["status"] in RENEWING and not subscription.get("cancel_at_period_end")
    changed = subscription.get("canceled_at") if not renews else None
    paid = sorted((invoice for invoice in invoices if invoice.get("status") == "paid"), key=lambda i: i["created"])
    bodies = []
    for invoice in paid:
        line = invoice["lines"]["data"][0]
        price = line.get("price") or (line.get("pricing") or {}).get("price_details") or {}
        currency = invoice["currency"].upper()
        amount = from_minor_units(invoice["amount_paid"], currency)
        body = {
            "purchase_type": "subscription",
            "store": STORE,
            "environment": _environment(subscription),
            "store_product_id": price.get("id")
            or price.get("price")
            or subscription["items"]["data"][0]["price"]["id"],
            "store_transaction_id": invoice["id"],
            "store_original_transaction_id": subscription["id"],
            "price": {"country": _country(invoice), "currency": currency, "value": amount},
            "purchased_at": _when(line_start(invoice)),  # a renewal is bought as its period starts
            "originally_purchased_at": _when(subscription["start_date"]),
            "expires_at": _when(line["period"]["end"]),
            "renew_status": renews,
        }
        if changed:
            body["renew_status_changed_at"] = _when(max(changed, subscription["start_date"]))
        if amount == 0 and invoice.get("billing_reason") == "subscription_create" and subscription.get("trial_end"):
            body["offer"] = {"category": "introductory", "type": "free_trial", "id": None}
        bodies.append(body)
    if bodies and subscription["status"] in BILLING_TROUBLE:
        # The renewal Stripe could not charge is the oldest invoice still open.
        failed = [invoice["created"] for invoice in invoices if invoice.get("status") == "open"]
        if failed:
            detected = max(min(failed), line_start(paid[-1]))
            bodies[-1]["billing_issue_detected_at"] = _when(detected)
    return bodies


def payment_transaction(intent: dict[str, Any], product: str | None = None) -> dict[str, Any] | None:
    """A succeeded payment intent as a one-time purchase of ``product`` (else the product its
    metadata names); None when it did not succeed."""
    if intent["status"] != "succeeded":
        return None
    currency = intent["currency"].upper()
    return {
        "purchase_type": "one_time_purchase",
        "store": STORE,
        "environment": _environment(intent),
        "store_product_id": product or (intent.get("metadata") or {}).get(PRODUCT_KEY) or PAYMENT_PRODUCT,
        "store_transaction_id": intent["id"],
        "store_original_transaction_id": intent["id"],
        "price": {
            "country": _country(intent),
            "currency": currency,
            "value": from_minor_units(intent.get("amount_received") or intent["amount"], currency),
        },
        "purchased_at": _when(intent["created"]),
    }
