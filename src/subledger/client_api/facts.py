"""The ledger as analytics reads it: each user (a profile) and each sale (a recorded transaction)
with the values filters and segments select by, its money in USD as revenue, proceeds and net
revenue, and its place in its subscription. Pure: rows in, facts out."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from subledger.catalog.rules import LIFETIME, Catalog, Rates
from subledger.events.rules import COMMISSION, REDUCED_COMMISSION
from subledger.metrics.rules import charged, months_of

ACCOUNTS = ("revenue", "proceeds", "net_revenue")
ATTRIBUTION = {  # filter or segment name: the attribution's field
    "attribution_status": "status",
    "attribution_channel": "channel",
    "attribution_campaign": "campaign",
    "attribution_adgroup": "ad_group",
    "attribution_adset": "ad_set",
    "attribution_creative": "creative",
}
USER_FIELDS = ("store", "country", "attribution_source", *ATTRIBUTION)
# Durations by name, as a product's period is spelt (any other period goes by its own spelling).
DURATIONS = {"P7D": "weekly", "P1W": "weekly", "P1M": "monthly", "P2M": "2_months", "P3M": "3_months"}
DURATIONS |= {"P6M": "6_months", "P12M": "annual", "P1Y": "annual", LIFETIME: "lifetime"}


Chain = tuple[UUID, str, str]  # profile, store, original transaction id: one subscription


@dataclass(frozen=True)
class Money:
    """One amount in USD as revenue (what was paid), proceeds (less the store's commission) and
    net revenue (less commission and sales tax)."""

    revenue: Decimal = Decimal(0)
    proceeds: Decimal = Decimal(0)
    net_revenue: Decimal = Decimal(0)

    def __add__(self, other: "Money") -> "Money":
        return Money(*(getattr(self, name) + getattr(other, name) for name in ACCOUNTS))

    def __sub__(self, other: "Money") -> "Money":
        return self + other.scaled(Decimal(-1))

    def scaled(self, factor: Decimal) -> "Money":
        return Money(*(getattr(self, name) * factor for name in ACCOUNTS))


@dataclass
class User:
    profile_id: UUID
    installed_at: datetime
    values: dict[str, str | None]  # store, country, attribution_*: what filters and segments read
    first_paywall_view: datetime | None = None
    sales: list["Sale"] = field(default_factory=list)


@dataclass
class Sale:
    user: User
    chain: Chain
    values: dict[str, str | None]  # the user's, and store_product_id, duration, offer_*
    subscription: bool
    trial: bool
    paid: bool
    money: Money  # what it brought (nothing for a trial)
    months: Decimal | None  # its period in months, for MRR (None: not a subscription)
    purchased_at: datetime
    ends_at: datetime | None  # when its access ends: expiry or refund (None: never)
    refunded_at: datetime | None
    renewal_cancelled_at: datetime | None
    billing_issue_at: datetime | None
    grace_period_ends_at: datetime | None
    number: int = 0  # its place among its subscription's paid sales (1 the first; 0 unpaid)

    def covers(self, moment: datetime) -> bool:
        return self.purchased_at <= moment and (self.ends_at is None or moment < self.ends_at)


def user(row: dict[str, Any]) -> User:
    """A profile row (with ``first_paywall_view``) as analytics reads it."""
    attribution: dict[str, dict[str, Any]] = row["attribution"] or {}
    newest = max(attribution.items(), key=lambda item: item[1]["created_at"], default=None)
    source, latest = newest if newest else (None, {})
    values: dict[str, str | None] = {
        "store": row["store"],
        "country": (row["store_country"] or row["ip_country"] or "").upper() or None,
        "attribution_source": source,
    }
    values |= {name: latest.get(key) for name, key in ATTRIBUTION.items()}
    return User(row["id"], row["created_at"], values, row.get("first_paywall_view"))


def duration(period: str | None, row: dict[str, Any]) -> str | None:
    if row["purchase_type"] != "subscription":
        return "lifetime" if row["expires_at"] is None else None
    if period is None:
        return None
    return DURATIONS.get(period, period)


@dataclass(frozen=True)
class Accounting:
    """How an app's sales split into proceeds and net revenue: the commission and tax its webhook
    events' figures take (net revenue is theirs)."""

    rates: Rates
    small_business: bool
    tax_rate: Decimal
    # Each price's Money, worked out once: an app has few prices and many sales.
    _priced: dict[tuple[Decimal, str, bool], Money] = field(default_factory=dict, init=False, repr=False, compare=False)

    def money(self, row: dict[str, Any], first_year: bool) -> Money:
        price = (charged(row), row["price_currency"], first_year)
        found = self._priced.get(price)
        if found is None:
            found = self._priced[price] = self._money(*price)
        return found

    def _money(self, price: Decimal, currency: str, first_year: bool) -> Money:
        revenue = self.rates.to_usd(price, currency)
        commission = REDUCED_COMMISSION if self.small_business or not first_year else COMMISSION
        tax = revenue - revenue / (1 + self.tax_rate)
        fee = (revenue - tax) * commission
        return Money(revenue, revenue - fee, revenue - fee - tax)


def add_sales(users: dict[UUID, User], rows: Iterable[dict[str, Any]], catalog: Catalog, books: Accounting) -> None:
    """Add the sales of these transaction rows to their users', numbered within their subscriptions."""
    chains: dict[Chain, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        chains[(row["profile_id"], row["store"], row["store_original_transaction_id"])].append(row)
    for chain, chain_rows in chains.items():
        chain_rows.sort(key=lambda row: (row["purchased_at"], row["store_transaction_id"]))
        owner = users[chain[0]]
        started = chain_rows[0]["originally_purchased_at"] or chain_rows[0]["purchased_at"]
        number = 0
        for row in chain_rows:
            sale = _sale(owner, chain, row, catalog, books, row["purchased_at"] < started + timedelta(days=365))
            if sale.paid and sale.subscription:
                number += 1
                sale.number = number
            owner.sales.append(sale)
    for owner in users.values():  # a profile that did not say its store or country: its first purchase's
        first = min(owner.sales, key=lambda sale: sale.purchased_at, default=None)
        for name in ("store", "country"):
            if owner.values[name] is None and first is not None:
                owner.values[name] = first.values[name]


def _sale(owner: User, chain: Chain, row: dict[str, Any], catalog: Catalog, books: Accounting, first: bool) -> Sale:
    product = catalog.product(row["store"], row["store_product_id"], row["store_base_plan_id"])
    period = product.period if product else None
    ends = [moment for moment in (row["expires_at"], row["refunded_at"]) if moment is not None]
    trial = row["offer_type"] == "free_trial"
    cancelled = row["renew_status"] is False and row["renew_status_changed_at"] is not None
    values = {
        **owner.values,
        "store": row["store"],
        "country": row["price_country"].upper(),
        "store_product_id": row["store_product_id"],
        "duration": duration(period, row),
        "offer_category": row["offer_category"],
        "offer_type": row["offer_type"],
        "offer_id": row["offer_id"],
    }
    return Sale(
        user=owner,
        chain=chain,
        values=values,
        subscription=row["purchase_type"] == "subscription",
        trial=trial,
        paid=charged(row) > 0,
        money=books.money(row, first),
        months=months_of(period, row),
        purchased_at=row["purchased_at"],
        ends_at=min(ends) if ends else None,
        refunded_at=row["refunded_at"],
        renewal_cancelled_at=row["renew_status_changed_at"] if cancelled else None,
        billing_issue_at=row["billing_issue_detected_at"],
        grace_period_ends_at=row["grace_period_expires_at"],
    )


def admits(values: dict[str, str | None], filters: dict[str, set[str]]) -> bool:
    """Whether every filter that names one of these values lets it through (countries in any case);
    a filter on something the fact does not have (a product, for a user) does not apply."""
    for name, allowed in filters.items():
        if name not in values:
            continue
        value = values[name]
        if name == "country":
            if value is None or value.upper() not in {item.upper() for item in allowed}:
                return False
        elif value not in allowed:
            return False
    return True
