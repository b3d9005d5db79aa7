"""Subscription metrics from ledger rows. Pure: no I/O; money in exact decimals.

Definitions (a bucket is a day, ISO week or calendar month, UTC, [start, end)):

- A transaction is *paid* when its price is above 0; a *trial* when its offer
  is a free trial. It *covers* [purchased_at, min(expires_at, refunded_at)).
- A *subscription* is a chain (profile, store, original transaction id).
- ``gross_usd``: paid transactions purchased in the bucket; ``refunds_usd``:
  paid transactions refunded in it; ``net_usd`` = gross - refunds.
- ``active_subscriptions`` / ``active_trials``: subscriptions with a paid / a
  trial transaction covering the end of the bucket (or now, for a bucket not
  over yet). ``mrr_usd``: those paid transactions' prices spread over their
  product's period per month (30.4375 days); ``arr_usd`` = 12 x MRR.
- ``new_subscriptions``: subscriptions whose first paid transaction was bought
  in the bucket (a converted trial counts). ``new_trials``: trials started in
  it; ``trial_conversions``: those that have a paid transaction since;
  ``trial_to_paid`` = conversions / new trials.
- ``churned_subscriptions``: subscriptions whose paid coverage ended in the
  bucket for good (nothing paid covers them after); ``churn_rate`` = churned /
  active at the start of the bucket.
- ``refund_rate``: paid transactions refunded in the bucket / paid
  transactions bought in it.
- ``arpu_usd``: net / profiles that existed at the end of the bucket;
  ``arppu_usd``: net / profiles with a paid purchase in the bucket.
- Cohorts: subscriptions by the month of their first paid transaction; month
  k's retention is the share still covered by a paid, unrefunded transaction
  at some moment of the k-th month after (up to now).

Filters select by the transaction each figure is attributed to (see ``rollup``).
Queries read the rollups that writes keep (``rollup``), summed over the filters.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

from subledger.catalog.rules import LIFETIME, PERIOD, Catalog, Rates

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
DAYS_PER_MONTH = Decimal("30.4375")
CENT = Decimal("0.01")
NANOS = Decimal(10**9)


def buckets(period: Period, start: date, end: date) -> list[tuple[datetime, datetime]]:
    """The buckets that hold the days ``start`` to ``end`` (both included)."""
    start = bucket_start(period, start)
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    step = {"day": relativedelta(days=1), "week": relativedelta(weeks=1), "month": relativedelta(months=1)}[period]
    last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    found = []
    while first < last:
        found.append((first, first + step))
        first += step
    return found


def bucket_start(period: Period, day: date) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def month_number(moment: datetime | date) -> int:
    return moment.year * 12 + moment.month - 1


@dataclass(frozen=True)
class Tx:
    chain: tuple[str, str]
    store_transaction_id: str
    key: tuple[str, str, str, str]  # store, product, country, environment: what filters select by
    usd: Decimal
    paid: bool
    trial: bool
    purchased_at: datetime
    ends_at: datetime | None  # None: for ever
    refunded_at: datetime | None
    months: Decimal | None  # the product's period in months (None: not a subscription)


@cache
def _period_months(period: str) -> Decimal:
    found = PERIOD.fullmatch(period)
    if found is None:
        raise ValueError(f"{period!r} is not a period")
    count, unit = found.groups()
    per_unit = {"D": 1 / DAYS_PER_MONTH, "W": 7 / DAYS_PER_MONTH, "M": Decimal(1), "Y": Decimal(12)}[unit]
    return int(count) * per_unit


def months_of(period: str | None, row: dict[str, Any]) -> Decimal | None:
    """A subscription transaction's period in months: its product's, else how long it runs
    (None: not a subscription, or it runs for ever)."""
    if row["purchase_type"] != "subscription":
        return None
    if period and period != LIFETIME:
        return _period_months(period)
    if row["expires_at"] is None:
        return None
    return Decimal((row["expires_at"] - row["purchased_at"]).total_seconds()) / 86400 / DAYS_PER_MONTH


def ledger_row(row: dict[str, Any], catalog: Catalog, rates: Rates) -> Tx:
    """A ledger transaction as the metrics see it."""
    product = catalog.product(row["store"], row["store_product_id"], row["store_base_plan_id"])
    ends = [moment for moment in (row["expires_at"], row["refunded_at"]) if moment is not None]
    return Tx(
        chain=(row["store"], row["store_original_transaction_id"]),
        store_transaction_id=row["store_transaction_id"],
        key=(row["store"], row["store_product_id"], row["price_country"], row["environment"]),
        usd=rates.to_usd(charged(row), row["price_currency"]),
        paid=charged(row) > 0,
        trial=row["offer_type"] == "free_trial",
        purchased_at=row["purchased_at"],
        ends_at=min(ends) if ends else None,
        refunded_at=row["refunded_at"],
        months=months_of(product.period if product else None, row),
    )


def ledger_rows(rows: list[dict[str, Any]], catalog: Catalog, rates: Rates) -> list[Tx]:
    """A profile's ledger transactions as the metrics see them."""
    return [ledger_row(row, catalog, rates) for row in rows]


def _money(nanos: int | Decimal) -> float:
    return float((Decimal(nanos) / NANOS).quantize(CENT, rounding=ROUND_HALF_EVEN))


def _ratio(part: int, whole: int) -> float | None:
    return None if not whole else float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


@dataclass
class Sums:
    """The rollups a query read, summed over its filters."""

    first_day: date  # of the window
    before: dict[str, int]  # each day measure summed over the days before the window
    days: dict[date, dict[str, int]]  # each day measure by day, in the window
    payers: dict[date, int]  # profiles with a paid purchase, by bucket start
    today: dict[str, int] | None  # how paid, mrr, trial and churned moved since midnight (None: now is outside)


def metrics(
    sums: Sums, spans: list[tuple[datetime, datetime]], profiles_at: list[int], now: datetime
) -> list[dict[str, Any]]:
    """One row of metrics per bucket; ``profiles_at`` counts the profiles at each bucket's end."""
    size = (spans[-1][1].date() - sums.first_day).days
    zero = dict.fromkeys(sums.before, 0)
    daily = [sums.days.get(sums.first_day + timedelta(days=index), zero) for index in range(size)]

    # Levels at the end of each day: what was covered before the window, plus each day's change.
    before = {name: sums.before[f"{name}_change"] for name in ("paid", "mrr", "trial")}
    levels, level = [], before
    for day in daily:
        level = {name: value + day[f"{name}_change"] for name, value in level.items()}
        levels.append(level)

    def level_at(index: int) -> dict[str, int]:  # at the end of day ``index`` (-1: before the window)
        return before if index < 0 else levels[index]

    today_index = (now.date() - sums.first_day).days

    rows = []
    for (start, end), profiles in zip(spans, profiles_at, strict=True):
        first, stop = (start.date() - sums.first_day).days, (end.date() - sums.first_day).days
        flows = {name: sum(day[name] for day in daily[first:stop]) for name in sums.before}
        churned = sum(day["churned"] for day in daily[first : min(stop, max(today_index, first))])
        if start > now:
            at_end = at_start = dict.fromkeys(before, 0)
        else:
            at_start = level_at(first - 1)
            if end <= now:
                at_end = level_at(stop - 1)
            else:
                today = sums.today  # read whenever now is in the window, as it is here
                assert today is not None
                yesterday = level_at(today_index - 1)  # and how today moved since midnight:
                at_end = {name: yesterday[name] + today[name] for name in before}
                churned += today["churned"]
        net = flows["gross"] - flows["refunds"]
        payers = sums.payers.get(start.date(), 0)
        rows.append(
            {
                "date": start.date().isoformat(),
                "gross_usd": _money(flows["gross"]),
                "refunds_usd": _money(flows["refunds"]),
                "net_usd": _money(net),
                "mrr_usd": _money(at_end["mrr"]),
                "arr_usd": _money(at_end["mrr"] * 12),
                "active_subscriptions": at_end["paid"],
                "active_trials": at_end["trial"],
                "new_subscriptions": flows["new_subscriptions"],
                "new_trials": flows["new_trials"],
                "trial_conversions": flows["trial_conversions"],
                "trial_to_paid": _ratio(flows["trial_conversions"], flows["new_trials"]),
                "churned_subscriptions": churned,
                "churn_rate": _ratio(churned, at_start["paid"]),
                "refund_rate": _ratio(flows["refunded"], flows["purchases"]),
                "arpu_usd": None if not profiles else _money(Decimal(net) / profiles),
                "arppu_usd": None if not payers else _money(Decimal(net) / payers),
            }
        )
    return rows


def cohorts(rows: dict[tuple[date, int], tuple[int, int]], now: datetime) -> list[dict[str, Any]]:
    """Monthly retention from the cohort rollup: {(cohort month, month offset): (covered, onward)}
    summed over the filters; cohorts without a first payment are left out."""
    this_month = month_number(now)
    found = []
    for month in sorted({month for month, _ in rows}):
        covered, onward = rows.get((month, 0), (0, 0))
        members = covered + onward
        if not members:
            continue
        kept, for_ever = [], 0
        for offset in range(this_month - month_number(month) + 1):
            covered, onward = rows.get((month, offset), (0, 0))
            for_ever += onward
            kept.append(covered + for_ever)
        retention = [_ratio(count, members) for count in kept]
        found.append({"cohort": month.strftime("%Y-%m"), "subscriptions": members, "retention": retention})
    return found


def charged(tx: dict[str, Any]) -> Decimal:
    """What the user paid in a recorded transaction: nothing in a free trial, whose ``price`` is
    the subscription's (the contract's own example sends a trial at the price after it)."""
    return Decimal(0) if tx["offer_type"] == "free_trial" else tx["price_value"]
