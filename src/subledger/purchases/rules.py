"""Ledger rules: transaction consistency, and the derivation of a profile's purchases
and access levels from its ledger. Pure: no I/O, no clock.

The derived state is a function of the ledger alone (never of "now"), so it can
be stored, recomputed at any time and compared (``subledger verify``). What does
depend on the moment of a request (``is_in_grace_period``) is evaluated when the
profile is rendered, from the dates stored here.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from subledger.catalog.rules import Catalog, Rates, period_end
from subledger.core.dates import format_datetime
from subledger.core.errors import ApiError
from subledger.metrics.rules import charged
from subledger.purchases.schemas import REQUIRED_FOR_SUBSCRIPTION, SUBSCRIPTION_FIELDS, TransactionIn

GRANT_STORE = "adapty"
# What a granted access level shows for the product it stands for, when the grant names none.
GRANT_PRODUCT = "adapty_server_side_product"
REVOKED = "adapty_revoked"
# purchase_id values are derived, not stored: uuid5 over the ledger keys.
PURCHASE_NAMESPACE = uuid.UUID("6f0c6f38-5b8e-4d7c-9a55-3b0c2f1d9e41")
NEVER = datetime.max.replace(tzinfo=UTC)
CENT = Decimal("0.01")


# Consistency of one transaction ------------------------------------------------


def check_transaction(tx: TransactionIn) -> None:
    """Raise the contract's 400 for every inconsistency, first one's code first."""
    problems: list[tuple[str, str, str]] = []
    sent = tx.model_fields_set
    if tx.purchase_type == "subscription":
        for name in REQUIRED_FOR_SUBSCRIPTION:
            if name not in sent:
                problems.append(("base_error", name, "This field is required for a subscription."))
        if "renew_status" in sent and tx.renew_status is None:
            problems.append(("base_error", "renew_status", "This field may not be null."))
        if "originally_purchased_at" in sent and tx.originally_purchased_at is None:
            problems.append(("base_error", "originally_purchased_at", "This field may not be null."))
    else:
        for name in SUBSCRIPTION_FIELDS:
            if name in sent:
                problems.append(("base_error", name, "This field is only for subscriptions."))

    def check(failed: bool, code: str, source: str, message: str) -> None:
        if failed:
            problems.append((code, source, message))

    purchased = tx.purchased_at
    check(
        tx.expires_at is not None and tx.expires_at <= purchased,
        "expires_date_error",
        "expires_at",
        "expires_at must be later than purchased_at.",
    )
    check(
        tx.originally_purchased_at is not None and tx.originally_purchased_at > purchased,
        "originally_purchased_date_error",
        "originally_purchased_at",
        "originally_purchased_at must not be later than purchased_at.",
    )
    check(
        tx.refunded_at is not None and tx.refunded_at < purchased,
        "refund_date_error",
        "refunded_at",
        "refunded_at must not be earlier than purchased_at.",
    )
    check(
        (tx.cancellation_reason == "refund") != (tx.refunded_at is not None),
        "refund_fields_error",
        "refunded_at",
        "refunded_at and cancellation_reason `refund` must be given together.",
    )
    check(
        tx.purchase_type == "one_time_purchase" and tx.offer is not None and tx.offer.type == "free_trial",
        "one_time_purchase_trial_error",
        "offer.type",
        "One-time purchase cannot have a trial.",
    )
    check(
        tx.is_family_shared and tx.price.value != 0,
        "family_share_price_error",
        "price.value",
        "A family-shared purchase must have a price of 0.",
    )
    check(
        tx.offer is not None and tx.offer.category != "introductory" and not tx.offer.id,
        "missing_offer_id",
        "offer.id",
        "An offer id is required for every offer category but introductory.",
    )
    check(
        tx.billing_issue_detected_at is not None and tx.billing_issue_detected_at < purchased,
        "billing_issue_detected_at_date_comparison_error",
        "billing_issue_detected_at",
        "billing_issue_detected_at must not be earlier than purchased_at.",
    )
    check(
        tx.grace_period_expires_at is not None and tx.billing_issue_detected_at is None,
        "grace_period_billing_error",
        "grace_period_expires_at",
        "grace_period_expires_at needs billing_issue_detected_at.",
    )
    check(
        tx.grace_period_expires_at is not None
        and tx.billing_issue_detected_at is not None
        and tx.grace_period_expires_at < tx.billing_issue_detected_at,
        "grace_period_expires_date_error",
        "grace_period_expires_at",
        "grace_period_expires_at must not be earlier than billing_issue_detected_at.",
    )
    check(
        tx.renew_status_changed_at is not None
        and tx.originally_purchased_at is not None
        and tx.renew_status_changed_at < tx.originally_purchased_at,
        "renew_status_changed_date_error",
        "renew_status_changed_at",
        "renew_status_changed_at must not be earlier than originally_purchased_at.",
    )
    if problems:
        grouped: dict[str, list[str]] = {}
        for _, source, message in problems:
            grouped.setdefault(source, []).append(message)
        raise ApiError(400, problems[0][0], list(grouped.items()))


def transaction_values(tx: TransactionIn) -> dict[str, Any]:
    """The ledger columns of a transaction (ids, profile and times aside)."""
    values = tx.model_dump(exclude={"offer", "price"})
    values.update(
        offer_category=tx.offer.category if tx.offer else None,
        offer_type=tx.offer.type if tx.offer else None,
        offer_id=tx.offer.id if tx.offer else None,
        price_country=tx.price.country,
        price_currency=tx.price.currency,
        price_value=tx.price.value,
    )
    return values


def refund(row: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The ledger changes that make a recorded transaction a refund at ``at`` (never before its purchase)."""
    return {"refunded_at": max(at, row["purchased_at"]), "cancellation_reason": "refund"}


# Derivation -------------------------------------------------------------------


@dataclass
class Derived:
    """What a profile's ledger adds up to; ``stored()`` is what the profile row keeps."""

    access_levels: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    non_subscriptions: list[dict[str, Any]] = field(default_factory=list)
    total_revenue_usd: Decimal = Decimal("0.00")

    def stored(self) -> dict[str, Any]:
        return {
            "access_levels": self.access_levels,
            "subscriptions": self.subscriptions,
            "non_subscriptions": self.non_subscriptions,
        }


@dataclass
class _Candidate:
    """One source of an access level: a transaction or a grant, and how far it reaches."""

    level: str
    start: datetime
    end: datetime | None
    grace_until: datetime | None
    tie: str
    fields: dict[str, Any]
    revoked: bool = False

    @property
    def reach(self) -> datetime:
        return max(self.end or NEVER, self.grace_until or self.start)


def _offer(tx: dict[str, Any]) -> dict[str, Any] | None:
    if tx["offer_category"] is None:
        return None
    return {"category": tx["offer_category"], "type": tx["offer_type"], "id": tx["offer_id"]}


def _purchase_id(profile_id: uuid.UUID, *keys: str) -> str:
    return str(uuid.uuid5(PURCHASE_NAMESPACE, "\x1f".join([str(profile_id), *keys])))


def _grace_until(tx: dict[str, Any]) -> datetime | None:
    if tx["refunded_at"] is None and tx["billing_issue_detected_at"] is not None:
        expires: datetime | None = tx["grace_period_expires_at"]
        return expires
    return None


def _latest(chain: list[dict[str, Any]]) -> dict[str, Any]:
    """The chain's current transaction: the latest purchase, whatever order they arrived in."""
    return max(chain, key=lambda tx: (tx["purchased_at"], tx["expires_at"] or NEVER, tx["store_transaction_id"]))


def _subscription(profile_id: uuid.UUID, chain: list[dict[str, Any]]) -> dict[str, Any]:
    tx = _latest(chain)
    original = tx["originally_purchased_at"] or min(item["purchased_at"] for item in chain)
    return {
        "purchase_id": _purchase_id(profile_id, tx["store"], tx["store_original_transaction_id"]),
        "purchase_type": "subscription",
        "store": tx["store"],
        "environment": tx["environment"],
        "store_product_id": tx["store_product_id"],
        "store_base_plan_id": tx["store_base_plan_id"],
        "store_transaction_id": tx["store_transaction_id"],
        "store_original_transaction_id": tx["store_original_transaction_id"],
        "offer": _offer(tx),
        "is_family_shared": tx["is_family_shared"],
        "price": {"country": tx["price_country"], "currency": tx["price_currency"], "value": float(tx["price_value"])},
        "purchased_at": format_datetime(tx["purchased_at"]),
        "refunded_at": format_datetime(tx["refunded_at"]),
        "cancellation_reason": tx["cancellation_reason"],
        "variation_id": tx["variation_id"],
        "originally_purchased_at": format_datetime(original),
        "expires_at": format_datetime(tx["expires_at"]),
        "renew_status": tx["renew_status"],
        "renew_status_changed_at": format_datetime(tx["renew_status_changed_at"]),
        "billing_issue_detected_at": format_datetime(tx["billing_issue_detected_at"]),
        "is_in_grace_period": False,  # evaluated at render time
        "grace_period_expires_at": format_datetime(tx["grace_period_expires_at"]),
    }


def _non_subscription(profile_id: uuid.UUID, tx: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    product = catalog.product(tx["store"], tx["store_product_id"], tx["store_base_plan_id"])
    return {
        "purchase_id": _purchase_id(profile_id, tx["store"], tx["store_transaction_id"]),
        "store": tx["store"],
        "store_product_id": tx["store_product_id"],
        "store_base_plan_id": tx["store_base_plan_id"],
        "store_transaction_id": tx["store_transaction_id"],
        "store_original_transaction_id": tx["store_original_transaction_id"],
        "purchased_at": format_datetime(tx["purchased_at"]),
        "environment": tx["environment"],
        "is_refund": tx["refunded_at"] is not None,
        "is_consumable": bool(product and product.is_consumable),
    }


def _transaction_candidate(tx: dict[str, Any], chain_start: datetime, catalog: Catalog) -> _Candidate | None:
    product = catalog.product(tx["store"], tx["store_product_id"], tx["store_base_plan_id"])
    if product is None or product.access_level_id is None or product.is_consumable:
        return None
    if tx["purchase_type"] == "subscription":
        end = tx["expires_at"]
    else:
        end = period_end(tx["purchased_at"], product.period)
    if tx["refunded_at"] is not None:
        end = tx["refunded_at"]  # a refund ends access at the refund time
    renewal_cancelled = tx["renew_status"] is False
    return _Candidate(
        level=product.access_level_id,
        start=tx["purchased_at"],
        end=end,
        grace_until=_grace_until(tx),
        tie=f"t:{tx['store']}:{tx['store_transaction_id']}",
        fields={
            "store": tx["store"],
            "store_product_id": tx["store_product_id"],
            "store_base_plan_id": tx["store_base_plan_id"],
            "store_transaction_id": tx["store_transaction_id"],
            "store_original_transaction_id": tx["store_original_transaction_id"],
            "offer": _offer(tx),
            "environment": tx["environment"],
            "purchased_at": tx["purchased_at"],
            "originally_purchased_at": tx["originally_purchased_at"] or chain_start,
            "renewal_cancelled_at": (tx["renew_status_changed_at"] or tx["purchased_at"])
            if renewal_cancelled
            else None,
            "billing_issue_detected_at": tx["billing_issue_detected_at"],
            "cancellation_reason": tx["cancellation_reason"],
        },
    )


def grant_transaction_id(profile_id: uuid.UUID, level_id: str, starts_at: str) -> str:
    """The transaction id a grant that names none shows (the contract's access level has one):
    the same on every recomputation, from what the derived access level holds."""
    return _purchase_id(profile_id, "grant", level_id, starts_at)


def _grant_candidate(profile_id: uuid.UUID, grant: dict[str, Any]) -> _Candidate:
    generated = grant_transaction_id(profile_id, grant["access_level_id"], format_datetime(grant["starts_at"]))
    return _Candidate(
        level=grant["access_level_id"],
        start=grant["starts_at"],
        end=grant["expires_at"],
        grace_until=None,
        tie=f"g:{grant['id']}",
        fields={
            "store": grant.get("store") or GRANT_STORE,
            "store_product_id": grant.get("store_product_id") or GRANT_PRODUCT,
            "store_base_plan_id": grant.get("store_base_plan_id"),
            "store_transaction_id": grant.get("store_transaction_id") or generated,
            "store_original_transaction_id": grant.get("store_original_transaction_id")
            or grant.get("store_transaction_id")
            or generated,
            "offer": None,
            "environment": grant.get("environment") or "Production",
            "purchased_at": grant["starts_at"],
            "originally_purchased_at": grant["starts_at"],
            "renewal_cancelled_at": None,
            "billing_issue_detected_at": None,
            "cancellation_reason": None,
        },
    )


def _revoke(candidate: _Candidate, at: datetime) -> None:
    """A revocation at ``at`` closes every source of the level that started by then."""
    if candidate.start <= at and candidate.reach > at:
        candidate.end = at if candidate.end is None else min(candidate.end, at)
        if candidate.grace_until is not None and candidate.grace_until > at:
            candidate.grace_until = None
        candidate.revoked = True


def _access_level(candidate: _Candidate) -> dict[str, Any]:
    f = candidate.fields
    return {
        "access_level_id": candidate.level,
        "store": f["store"],
        "store_product_id": f["store_product_id"],
        "store_base_plan_id": f["store_base_plan_id"],
        "store_transaction_id": f["store_transaction_id"],
        "store_original_transaction_id": f["store_original_transaction_id"],
        "offer": f["offer"],
        "environment": f["environment"],
        "starts_at": format_datetime(candidate.start),
        "purchased_at": format_datetime(f["purchased_at"]),
        "originally_purchased_at": format_datetime(f["originally_purchased_at"]),
        "expires_at": format_datetime(candidate.end),
        "renewal_cancelled_at": format_datetime(f["renewal_cancelled_at"]),
        "billing_issue_detected_at": format_datetime(f["billing_issue_detected_at"]),
        "is_in_grace_period": False,  # evaluated at render time from the key below
        "_grace_until": format_datetime(candidate.grace_until),
        "cancellation_reason": REVOKED if candidate.revoked else f["cancellation_reason"],
    }


def derive(
    profile_id: uuid.UUID,
    transactions: list[dict[str, Any]],
    grants: list[dict[str, Any]],
    catalog: Catalog,
    rates: Rates,
) -> Derived:
    """A profile's purchases, access levels and revenue, from its ledger alone.

    Every list is sorted by stable keys, so the result does not depend on the
    order in which the ledger rows were written or read.
    """
    chains: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for tx in transactions:
        if tx["purchase_type"] == "subscription":
            chains.setdefault((tx["store"], tx["store_original_transaction_id"]), []).append(tx)
    chain_starts = {key: min(tx["purchased_at"] for tx in chain) for key, chain in chains.items()}

    candidates = []
    for tx in transactions:
        chain_start = chain_starts.get((tx["store"], tx["store_original_transaction_id"]), tx["purchased_at"])
        candidate = _transaction_candidate(tx, chain_start, catalog)
        if candidate is not None:
            candidates.append(candidate)
    candidates += [_grant_candidate(profile_id, grant) for grant in grants if grant["kind"] == "grant"]
    for revocation in grants:
        if revocation["kind"] == "revoke":
            for candidate in candidates:
                if candidate.level == revocation["access_level_id"]:
                    _revoke(candidate, revocation["starts_at"])

    winners: dict[str, _Candidate] = {}
    for candidate in candidates:
        best = winners.get(candidate.level)
        if best is None or (candidate.reach, candidate.start, candidate.tie) > (best.reach, best.start, best.tie):
            winners[candidate.level] = candidate

    subscriptions = sorted(
        (_subscription(profile_id, chain) for chain in chains.values()),
        key=lambda item: (item["originally_purchased_at"], item["store"], item["store_original_transaction_id"]),
    )
    non_subscriptions = sorted(
        (_non_subscription(profile_id, tx, catalog) for tx in transactions if tx["purchase_type"] != "subscription"),
        key=lambda item: (item["purchased_at"], item["store"], item["store_transaction_id"]),
    )
    return Derived(
        access_levels=[_access_level(winners[level]) for level in sorted(winners)],
        subscriptions=subscriptions,
        non_subscriptions=non_subscriptions,
        total_revenue_usd=revenue_usd(transactions, rates),
    )


def revenue_usd(transactions: list[dict[str, Any]], rates: Rates) -> Decimal:
    """What a profile's transactions brought in, in USD to the cent: every one but the refunded."""
    revenue = sum(
        (rates.to_usd(charged(tx), tx["price_currency"]) for tx in transactions if tx["refunded_at"] is None),
        Decimal(0),
    )
    return revenue.quantize(CENT, rounding=ROUND_HALF_EVEN)
