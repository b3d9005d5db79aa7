"""Which events a ledger change makes, what they carry, and how deliveries are
signed and retried. Pure: no I/O, no clock (times are arguments).
"""

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from subledger.catalog.rules import Rates
from subledger.core.dates import format_datetime

SUBSCRIPTION_TYPES = [
    "subscription_started",
    "subscription_renewed",
    "subscription_renewal_cancelled",
    "subscription_renewal_reactivated",
    "subscription_expired",
    "subscription_paused",
    "subscription_deferred",
    "subscription_refunded",
    "trial_started",
    "trial_converted",
    "trial_renewal_cancelled",
    "trial_renewal_reactivated",
    "trial_expired",
    "entered_grace_period",
    "billing_issue_detected",
]
PURCHASE_TYPES = ["non_subscription_purchase", "non_subscription_purchase_refunded"]
# The reference's synthetic events, "still active": each, the start it follows.
STILL_ACTIVE = {"trial_active": "trial_started", "subscription_active": "subscription_started"}
EVENT_TYPES = [
    *SUBSCRIPTION_TYPES,
    *PURCHASE_TYPES,
    *STILL_ACTIVE,
    "access_level_updated",
    "profile_created",
    "profile_deleted",
]
# What an endpoint receives when it names no types: everything but the profile lifecycle and the
# synthetic events (which, as the reference has it, are asked for by name).
DEFAULT_TYPES = [t for t in EVENT_TYPES if t not in {"profile_created", "profile_deleted", *STILL_ACTIVE}]
REVENUE_TYPES = {
    "subscription_started",
    "subscription_renewed",
    "trial_converted",
    "subscription_refunded",
    "non_subscription_purchase",
}
CANCEL_OR_REFUND_TYPES = {
    "subscription_renewal_cancelled",
    "trial_renewal_cancelled",
    "subscription_refunded",
    "non_subscription_purchase_refunded",
    "subscription_expired",
    "trial_expired",
}
TRIAL_TYPES = {
    "trial_started",
    "trial_active",
    "trial_converted",
    "trial_renewal_cancelled",
    "trial_renewal_reactivated",
    "trial_expired",
}

MAX_CURSOR = 2**63 - 1  # a feed cursor is an event's sequence number, a 64-bit integer
CENT = Decimal("0.01")
COMMISSION = Decimal("0.30")
REDUCED_COMMISSION = Decimal("0.15")  # after a chain's first year, or for a small business


@dataclass(frozen=True)
class Change:
    """One event a change makes: its type, when it happened, and the transaction it is about."""

    event_type: str
    at: datetime
    transaction: dict[str, Any] | None = None
    access_level: dict[str, Any] | None = None


def is_trial(tx: dict[str, Any]) -> bool:
    return bool(tx.get("offer_type") == "free_trial")


def _flip(before: Any, after: Any) -> bool:
    return bool(before != after)


def transaction_changes(
    before: dict[str, Any] | None, after: dict[str, Any], chain: list[dict[str, Any]]
) -> list[Change]:
    """Events of one transaction written to the ledger.

    ``before`` is the row as it was (None for a new transaction); ``chain`` the
    other transactions of its subscription chain as they were.
    """
    changes: list[Change] = []
    if after["purchase_type"] != "subscription":
        if before is None:
            changes.append(Change("non_subscription_purchase", after["purchased_at"], after))
        if after["refunded_at"] is not None and (before is None or before["refunded_at"] is None):
            changes.append(Change("non_subscription_purchase_refunded", after["refunded_at"], after))
        return changes

    trial = is_trial(after)
    earlier = [tx for tx in chain if tx["purchased_at"] < after["purchased_at"]]
    previous = before or (max(earlier, key=lambda tx: tx["purchased_at"]) if earlier else None)
    if before is None:
        if previous is None or trial:
            changes.append(Change("trial_started" if trial else "subscription_started", after["purchased_at"], after))
        elif is_trial(previous):
            changes.append(Change("trial_converted", after["purchased_at"], after))
        else:
            changes.append(Change("subscription_renewed", after["purchased_at"], after))

    prefix = "trial" if trial else "subscription"
    was_renewing = True if previous is None else previous["renew_status"]
    if was_renewing and after["renew_status"] is False:
        at = after["renew_status_changed_at"] or after["purchased_at"]
        changes.append(Change(f"{prefix}_renewal_cancelled", at, after))
    elif was_renewing is False and after["renew_status"]:
        at = after["renew_status_changed_at"] or after["purchased_at"]
        changes.append(Change(f"{prefix}_renewal_reactivated", at, after))
    if after["billing_issue_detected_at"] is not None and (
        before is None or before["billing_issue_detected_at"] is None
    ):
        changes.append(Change("billing_issue_detected", after["billing_issue_detected_at"], after))
        if after["grace_period_expires_at"] is not None:
            changes.append(Change("entered_grace_period", after["billing_issue_detected_at"], after))
    if after["refunded_at"] is not None and (before is None or before["refunded_at"] is None):
        changes.append(Change("subscription_refunded", after["refunded_at"], after))
    if after.get("paused_at") is not None and (before is None or before.get("paused_at") is None):
        changes.append(Change("subscription_paused", after["paused_at"], after))
    deferred = after.get("deferred_at")
    if deferred is not None and (before is None or before.get("deferred_at") != deferred):
        changes.append(Change("subscription_deferred", deferred, after))
    return changes


def access_level_changes(old: list[dict[str, Any]], new: list[dict[str, Any]], at: datetime) -> list[Change]:
    """One ``access_level_updated`` for every level whose derived state changed."""
    before = {level["access_level_id"]: level for level in old}
    return [
        Change("access_level_updated", at, access_level=level)
        for level in new
        if before.get(level["access_level_id"]) != level
    ]


def expiry_of(tx: dict[str, Any]) -> datetime | None:
    """When the access of a chain's latest transaction runs out; None if it never
    does or ended by refund (which has an event of its own)."""
    if tx["refunded_at"] is not None or tx["expires_at"] is None:
        return None
    expires: datetime = tx["expires_at"]
    grace = tx["grace_period_expires_at"] if tx["billing_issue_detected_at"] is not None else None
    return max(expires, grace or expires)


def still_active(event_type: str, chain: list[dict[str, Any]], at: datetime) -> dict[str, Any] | None:
    """The chain's latest transaction if ``event_type`` ("still active") fires at ``at``: the
    trial is still the chain's latest and has not ended (trial_active), or the subscription's
    access has not ended, renewals included (subscription_active); None if it does not fire."""
    latest = max(chain, key=lambda tx: (tx["purchased_at"], tx["store_transaction_id"]))
    if event_type == "trial_active" and not is_trial(latest):
        return None  # converted, or replaced: no longer a trial
    ends = expiry_of(latest)
    return latest if ends is not None and ends > at else None


def is_active(level: dict[str, Any], now: str) -> bool:
    return level["starts_at"] <= now and (
        level["expires_at"] is None or now < level["expires_at"] or _in_grace(level, now)
    )


def _in_grace(level: dict[str, Any], now: str) -> bool:
    return level.get("_grace_until") is not None and now < level["_grace_until"]


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def revenue(
    price: Decimal, usd_per_unit: Decimal, first_year: bool, small_business: bool, tax_rate: Decimal
) -> dict[str, float]:
    """Proceeds, net revenue and tax of a price, in local currency and USD.

    Prices include tax: tax = price - price / (1 + rate). The store's
    commission is taken from the price without tax; proceeds are what is left.
    """
    commission = REDUCED_COMMISSION if small_business or not first_year else COMMISSION
    tax = price - price / (1 + tax_rate)
    proceeds = (price - tax) * (1 - commission)
    figures = {"proceeds": proceeds, "net_revenue": proceeds, "tax_amount": tax}
    result = {}
    for name, local in figures.items():
        result[f"{name}_local"] = _money(local)
        result[f"{name}_usd"] = _money(local * usd_per_unit)
    return result


def _trial_duration(tx: dict[str, Any]) -> str | None:
    """The reference's format, "{} days", one day included ("1 days")."""
    if not is_trial(tx) or tx.get("expires_at") is None:
        return None
    days = round((tx["expires_at"] - tx["purchased_at"]) / timedelta(days=1))
    return f"{days} days"


def _standard_price(tx: dict[str, Any]) -> Decimal | None:
    """The product's standard price, before an offer: what was charged without one; a free
    trial's recorded price (the subscription's, when the caller sent it); unknown (None) under
    any other offer, whose price is the offer's."""
    price: Decimal = tx["price_value"]
    if tx["offer_type"] is None or (is_trial(tx) and price > 0):
        return price
    return None


def _price_properties(tx: dict[str, Any], rate: Decimal) -> dict[str, Any]:
    """What was charged, the standard price and the discount between them, local and in USD. A
    free trial charges nothing (null, as the reference sends it) and its discount is the whole
    standard price."""
    standard = _standard_price(tx)
    charged = None if is_trial(tx) else tx["price_value"]
    discount = None if standard is None else standard - (charged or 0)
    properties = {}
    for name, value in (("price", charged), ("original_price", standard), ("discount_amount", discount)):
        properties[f"{name}_local"] = None if value is None else float(value)
        properties[f"{name}_usd"] = None if value is None else _money(value * rate)
    return properties


# The paywall fields when a transaction names no variation, or one subledger does not know.
NO_PAYWALL = {
    "paywall_name": None,
    "paywall_revision": None,
    "ab_test_name": None,
    "ab_test_revision": None,
    "developer_id": None,
    "cohort_name": None,
}


@dataclass(frozen=True)
class Context:
    """What every event of one change shares: the profile as it now is, and what the paywalls
    its transactions' variations belong to are called (``paywalls``: variation id -> the
    ``NO_PAYWALL`` fields)."""

    profile: dict[str, Any]
    installation: dict[str, Any] | None
    has_access_level: bool
    rates: Rates
    small_business: bool
    tax_rate: Decimal
    paywalls: dict[str, dict[str, Any]]

    def paywall(self, tx: dict[str, Any] | None) -> dict[str, Any]:
        return self.paywalls.get((tx or {}).get("variation_id") or "", NO_PAYWALL)


def _transaction_properties(
    change: Change, tx: dict[str, Any], chain: list[dict[str, Any]], ctx: Context
) -> dict[str, Any]:
    rate = ctx.rates.to_usd(Decimal(1), tx["price_currency"])
    paid = [item for item in chain if not is_trial(item) and item["purchased_at"] <= tx["purchased_at"]]
    chain_start = min((item["purchased_at"] for item in chain), default=tx["purchased_at"])
    first_year = tx["purchased_at"] < chain_start + timedelta(days=365)
    properties = {
        "store": tx["store"],
        "environment": tx["environment"],
        "vendor_product_id": tx["store_product_id"],
        "base_plan_id": tx["store_base_plan_id"],
        "transaction_id": tx["store_transaction_id"],
        "original_transaction_id": tx["store_original_transaction_id"],
        "purchase_date": format_datetime(tx["purchased_at"]),
        "original_purchase_date": format_datetime(tx.get("originally_purchased_at") or chain_start),
        "subscription_expires_at": format_datetime(tx.get("expires_at")),
        "currency": tx["price_currency"],
        **_price_properties(tx, rate),
        "store_country": tx["price_country"],
        "profile_country": ctx.profile.get("ip_country"),
        "consecutive_payments": len(paid),
        # The reduced commission after a year of renewals (a subscription's only).
        "rate_after_first_year": tx["purchase_type"] == "subscription" and not first_year,
        "variation_id": tx["variation_id"],
        **ctx.paywall(tx),
        "store_offer_category": tx["offer_category"],
        "store_offer_discount_type": tx["offer_type"],
        "promotional_offer_id": tx["offer_id"] if tx["offer_category"] == "promotional" else None,
    }
    if tx["offer_type"] is not None:
        properties["store_offer_number_of_periods"] = None  # stores do not report it to subledger
    if change.event_type in CANCEL_OR_REFUND_TYPES:
        properties["cancellation_reason"] = tx["cancellation_reason"]
    if change.event_type in TRIAL_TYPES:
        properties["trial_duration"] = _trial_duration(tx)
    if change.event_type in REVENUE_TYPES:
        properties.update(revenue(tx["price_value"], rate, first_year, ctx.small_business, ctx.tax_rate))
    return properties


def _access_level_properties(
    level: dict[str, Any], tx: dict[str, Any] | None, now: str, ctx: Context
) -> dict[str, Any]:
    offer = level["offer"] or {}
    return {
        "access_level_id": level["access_level_id"],
        "starts_at": level["starts_at"],
        "is_active": is_active(level, now),
        "is_lifetime": level["expires_at"] is None,
        "is_refund": bool(tx and tx["refunded_at"] is not None),
        "is_in_grace_period": _in_grace(level, now),
        "will_renew": bool(tx and tx.get("renew_status") and tx["refunded_at"] is None),
        "activated_at": level["starts_at"],
        "renewed_at": level["purchased_at"],
        "expires_at": level["expires_at"],
        "billing_issue_detected_at": level["billing_issue_detected_at"],
        "cancellation_reason": level["cancellation_reason"],
        "store": level["store"],
        "environment": level["environment"],
        "vendor_product_id": level["store_product_id"],
        "base_plan_id": level["store_base_plan_id"],
        "transaction_id": level["store_transaction_id"],
        "original_transaction_id": level["store_original_transaction_id"],
        "purchase_date": level["purchased_at"],
        "original_purchase_date": level["originally_purchased_at"],
        "subscription_expires_at": format_datetime(tx.get("expires_at")) if tx else None,
        "currency": tx["price_currency"] if tx else None,
        "active_introductory_offer_type": offer.get("type") if offer.get("category") == "introductory" else None,
        "active_promotional_offer_type": offer.get("type") if offer.get("category") == "promotional" else None,
        "active_promotional_offer_id": offer.get("id") if offer.get("category") == "promotional" else None,
        "store_country": tx["price_country"] if tx else None,
        "profile_country": ctx.profile.get("ip_country"),
        "variation_id": tx["variation_id"] if tx else None,
        **ctx.paywall(tx),
        "trial_duration": _trial_duration(tx) if tx else None,
    }


def payload(
    change: Change,
    event_id: str,
    ctx: Context,
    chain: list[dict[str, Any]],
    now: datetime,
    level_transaction: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The webhook body of one event (the contract's outgoing payload)."""
    profile, device = ctx.profile, ctx.installation or {}
    private = profile.get("analytics_disabled", False)
    if change.access_level is not None:
        properties = _access_level_properties(change.access_level, level_transaction, format_datetime(now), ctx)
    elif change.transaction is not None:
        properties = _transaction_properties(change, change.transaction, chain, ctx)
    else:
        properties = {}
    properties.update(
        profile_id=str(profile["id"]),
        profile_event_id=event_id,
        profile_has_access_level=ctx.has_access_level,
        profile_total_revenue_usd=float(profile.get("total_revenue_usd") or 0),
        profile_ip_address=None if private else profile.get("ip_v4_address"),
        event_datetime=format_datetime(change.at),
    )
    attributes = profile.get("custom_attributes") or {}
    return {
        "profile_id": str(profile["id"]),
        "customer_user_id": profile.get("customer_user_id"),
        "idfv": None if private else device.get("idfv"),
        "idfa": None if private else device.get("idfa"),
        "advertising_id": None if private else device.get("advertising_id"),
        "profile_install_datetime": format_datetime(profile.get("created_at")),
        "user_agent": None if private else device.get("user_agent"),
        "email": profile.get("email"),
        "event_type": change.event_type,
        "event_datetime": format_datetime(change.at),
        "event_properties": properties,
        "event_api_version": 1,
        "profiles_sharing_access_level": [],
        "attributions": profile.get("attribution") or {},
        "user_attributes": {key: attributes[key] for key in sorted(attributes)},
        "integration_ids": profile.get("integration_ids") or None,
        "play_store_purchase_token": _play_token(change.transaction or level_transaction),
    }


def _play_token(tx: dict[str, Any] | None) -> dict[str, Any] | None:
    """What revalidating a Google Play purchase takes (sent with "send Play Store purchase token")."""
    if not tx or tx["store"] != "play_store" or not tx.get("store_purchase_token"):
        return None
    return {
        "product_id": tx["store_product_id"],
        "purchase_token": tx["store_purchase_token"],
        "is_subscription": tx["purchase_type"] == "subscription",
    }


# Endpoints ---------------------------------------------------------------------


def environment_of(change: Change) -> str:
    """Which of an endpoint's URLs an event goes to: ``sandbox`` for a sandbox transaction's
    (or access level's), ``production`` for the rest."""
    subject = change.transaction or change.access_level or {}
    return "sandbox" if subject.get("environment") == "Sandbox" else "production"


def target_of(endpoint: dict[str, Any], target: str) -> tuple[str | None, str | None]:
    """An endpoint's URL and (sealed) Authorization value for ``target``."""
    if target == "sandbox":
        return endpoint["sandbox_url"], endpoint["sandbox_authorization_header"]
    return endpoint["url"], endpoint["authorization_header"]


def forward_target(settings: dict[str, Any] | None, secrets: dict[str, str] | None) -> tuple[str | None, str | None]:
    """Where an app forwards a store's notifications, and the (sealed) Authorization value sent
    with them, from its settings for that store."""
    return (settings or {}).get("forward_url"), (secrets or {}).get("forward_authorization")


def wants(endpoint: dict[str, Any], change: Change, target: str, installed_at: datetime | None) -> bool:
    """Whether an endpoint gets an event: it asked for its type, has a URL for its environment,
    and, excluding historical events, the event did not happen before the profile was made
    (a purchase from before the app used subledger, imported or restored)."""
    if change.event_type not in endpoint["event_types"] or target_of(endpoint, target)[0] is None:
        return False
    return not (endpoint["exclude_historical_events"] and installed_at is not None and change.at < installed_at)


def delivered_body(payload: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    """The body an endpoint gets for an event: the event's payload with the endpoint's names
    and options applied (the event itself keeps the reference's names and every field)."""
    body = {**payload, "event_type": (endpoint["event_names"] or {}).get(payload["event_type"], payload["event_type"])}
    properties = payload["event_properties"]
    if endpoint["send_trial_price"] and payload["event_type"] == "trial_started":
        # The subscription's price, where a free trial's own is null.
        body["event_properties"] = {
            **properties,
            "price_local": properties.get("original_price_local"),
            "price_usd": properties.get("original_price_usd"),
        }
    for option, field in (
        ("send_user_attributes", "user_attributes"),
        ("send_attribution", "attributions"),
        ("send_play_store_purchase_token", "play_store_purchase_token"),
    ):
        if not endpoint[option]:
            body.pop(field, None)
    return body


def sample_payload(event_type: str, event_id: str, now: datetime) -> dict[str, Any]:
    """A test event's body: the shape of a real one of ``event_type``, about nobody."""
    moment = format_datetime(now)
    nobody = "00000000-0000-0000-0000-000000000000"
    return {
        "profile_id": nobody,
        "customer_user_id": "subledger-test-event",
        "idfv": None,
        "idfa": None,
        "advertising_id": None,
        "profile_install_datetime": moment,
        "user_agent": None,
        "email": None,
        "event_type": event_type,
        "event_datetime": moment,
        "event_properties": {
            "store": "app_store",
            "environment": "Sandbox",
            "vendor_product_id": "subledger.test.monthly",
            "transaction_id": "0",
            "original_transaction_id": "0",
            "purchase_date": moment,
            "original_purchase_date": moment,
            "currency": "USD",
            "price_local": 9.99,
            "price_usd": 9.99,
            "original_price_local": 9.99,
            "original_price_usd": 9.99,
            "profile_id": nobody,
            "profile_event_id": event_id,
            "profile_has_access_level": True,
            "profile_total_revenue_usd": 0.0,
            "event_datetime": moment,
        },
        "event_api_version": 1,
        "profiles_sharing_access_level": [],
        "attributions": {},
        "user_attributes": {},
        "integration_ids": None,
        "play_store_purchase_token": None,
    }


def is_refusal(status_code: int) -> bool:
    """An answer that ends a delivery without success: the reference retries none from 200 to
    404, so receivers answer 400 or 404 to stop retries."""
    return 300 <= status_code <= 404


# Delivery ---------------------------------------------------------------------

SIGNATURE_HEADER = "Subledger-Signature"
EVENT_ID_HEADER = "Subledger-Event-Id"
RETRY_FOR = timedelta(hours=24)
FIRST_RETRY = 10.0  # seconds
MAX_RETRY = 3600.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``, as the README documents."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def next_attempt(attempts: int, first_attempt_at: datetime, now: datetime, rng: random.Random) -> datetime | None:
    """When to try again after ``attempts`` failures; None once the retry window is over.

    Exponential backoff with jitter (half fixed, half random), capped at an hour; attempts go on for
    at least 24 hours after the first one.
    """
    if now - first_attempt_at >= RETRY_FOR:
        return None
    ceiling = min(MAX_RETRY, FIRST_RETRY * 2 ** (attempts - 1))
    return now + timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))
