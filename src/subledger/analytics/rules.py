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
"""

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import accumulate
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

from subledger.catalog.rules import LIFETIME, PERIOD, Catalog, Rates

Period = Literal["day", "week", "month"]
DAYS_PER_MONTH = Decimal("30.4375")
CENT = Decimal("0.01")


def buckets(period: Period, start: date, end: date) -> list[tuple[datetime, datetime]]:
    """The buckets that hold the days ``start`` to ``end`` (both included)."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    if period == "week":
        first -= timedelta(days=first.weekday())
    elif period == "month":
        first = first.replace(day=1)
    step = {"day": relativedelta(days=1), "week": relativedelta(weeks=1), "month": relativedelta(months=1)}[period]
    last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    found = []
    while first < last:
        found.append((first, first + step))
        first += step
    return found


@dataclass(frozen=True)
class Tx:
    chain: tuple
    profile_id: Any
    usd: Decimal
    paid: bool
    trial: bool
    purchased_at: datetime
    ends_at: datetime | None  # None: for ever
    refunded_at: datetime | None
    months: Decimal | None  # the product's period in months (None: not a subscription)


def _months(period: str | None, tx: Any) -> Decimal | None:
    if tx.purchase_type != "subscription":
        return None
    if period and period != LIFETIME:
        count, unit = PERIOD.fullmatch(period).groups()
        per_unit = {"D": 1 / DAYS_PER_MONTH, "W": 7 / DAYS_PER_MONTH, "M": Decimal(1), "Y": Decimal(12)}[unit]
        return int(count) * per_unit
    if tx.expires_at is None:
        return None
    return Decimal((tx.expires_at - tx.purchased_at).total_seconds()) / 86400 / DAYS_PER_MONTH


def ledger_rows(rows: list, catalog: Catalog, rates: Rates) -> list[Tx]:
    """Ledger transactions (rows with attribute access) as the metrics see them."""
    found = []
    periods: dict[tuple, str | None] = {}
    for row in rows:
        key = (row.store, row.store_product_id, row.store_base_plan_id)
        if key not in periods:
            product = catalog.product(*key)
            periods[key] = product.period if product else None
        ends = [moment for moment in (row.expires_at, row.refunded_at) if moment is not None]
        found.append(
            Tx(
                chain=(row.profile_id, row.store, row.store_original_transaction_id),
                profile_id=row.profile_id,
                usd=rates.to_usd(row.price_value, row.price_currency),
                paid=row.price_value > 0,
                trial=row.offer_type == "free_trial",
                purchased_at=row.purchased_at,
                ends_at=min(ends) if ends else None,
                refunded_at=row.refunded_at,
                months=_months(periods[key], row),
            )
        )
    return found


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _ratio(part: int | Decimal, whole: int | Decimal) -> float | None:
    return None if not whole else float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


def _coverage(txs: list[Tx], kind: str, moments: list[datetime]) -> tuple[list[int], list[Decimal]]:
    """For each of the sorted ``moments``: the subscriptions with a ``kind`` (paid or trial)
    transaction covering it, and the monthly value of those transactions.

    Within a subscription a later purchase takes over from its purchase on (an
    upgrade, a renewal bought early), so a subscription counts once at a time.
    """
    chains: dict[tuple, list[Tx]] = defaultdict(list)
    for tx in txs:
        if tx.months is not None and getattr(tx, kind):
            chains[tx.chain].append(tx)
    size = len(moments)
    counts, values = [0] * (size + 1), [Decimal(0)] * (size + 1)
    for chain_txs in chains.values():
        chain_txs.sort(key=lambda tx: tx.purchased_at)
        for index, tx in enumerate(chain_txs):
            end = tx.ends_at
            if index + 1 < len(chain_txs):
                taken_over = chain_txs[index + 1].purchased_at
                end = taken_over if end is None else min(end, taken_over)
            first = bisect_left(moments, tx.purchased_at)  # the first moment at or after the purchase
            after = size if end is None else bisect_left(moments, end)  # the first moment it no longer covers
            if first < after:
                monthly = tx.usd / tx.months if tx.months else Decimal(0)
                counts[first] += 1
                counts[after] -= 1
                values[first] += monthly
                values[after] -= monthly
    return list(accumulate(counts[:size])), list(accumulate(values[:size]))


def metrics(
    txs: list[Tx],
    spans: list[tuple[datetime, datetime]],
    profiles_at: list[int],
    now: datetime,
) -> list[dict[str, Any]]:
    """One row of metrics per bucket; ``profiles_at`` counts the profiles at each bucket's end."""
    starts = [start for start, _ in spans]

    def bucket_of(moment: datetime | None) -> int | None:
        if moment is None or moment < spans[0][0] or moment >= spans[-1][1]:
            return None
        return bisect_right(starts, moment) - 1

    count = len(spans)
    gross, refunds = [Decimal(0)] * count, [Decimal(0)] * count
    bought, refunded = [0] * count, [0] * count
    payers: list[set] = [set() for _ in spans]
    first_paid: dict[tuple, datetime] = {}
    trial_started: dict[tuple, datetime] = {}
    last_paid: dict[tuple, datetime] = {}
    for tx in txs:
        if tx.paid:
            if (b := bucket_of(tx.purchased_at)) is not None:
                gross[b] += tx.usd
                bought[b] += 1
                payers[b].add(tx.profile_id)
            if (b := bucket_of(tx.refunded_at)) is not None:
                refunds[b] += tx.usd
                refunded[b] += 1
            if tx.months is not None:
                first_paid[tx.chain] = min(first_paid.get(tx.chain, tx.purchased_at), tx.purchased_at)
                end = tx.ends_at or datetime.max.replace(tzinfo=UTC)
                last_paid[tx.chain] = max(last_paid.get(tx.chain, end), end)
        elif tx.trial and tx.months is not None:
            trial_started[tx.chain] = min(trial_started.get(tx.chain, tx.purchased_at), tx.purchased_at)

    new, trials, converted, churned = [0] * count, [0] * count, [0] * count, [0] * count
    for at in first_paid.values():
        if (b := bucket_of(at)) is not None:
            new[b] += 1
    for chain, at in trial_started.items():
        if (b := bucket_of(at)) is not None:
            trials[b] += 1
            converted[b] += chain in first_paid and first_paid[chain] >= at
    for at in last_paid.values():
        if at <= now and (b := bucket_of(at)) is not None:
            churned[b] += 1

    # Subscriptions are counted at the end of each bucket (now, for the current one) and just before its start.
    tick = timedelta(microseconds=1)
    ends = [min(end, now) - tick for _, end in spans]
    starts_before = [start - tick for start, _ in spans]
    moments = sorted({*ends, *starts_before})
    paid_count, paid_value = _coverage(txs, "paid", moments)
    trial_count, _ = _coverage(txs, "trial", moments)
    at = {moment: index for index, moment in enumerate(moments)}

    rows = []
    for b, (start, _end) in enumerate(spans):
        begun = start <= now
        net = gross[b] - refunds[b]
        mrr = paid_value[at[ends[b]]] if begun else Decimal(0)
        at_start = paid_count[at[starts_before[b]]] if begun else 0
        rows.append(
            {
                "date": start.date().isoformat(),
                "gross_usd": _money(gross[b]),
                "refunds_usd": _money(refunds[b]),
                "net_usd": _money(net),
                "mrr_usd": _money(mrr),
                "arr_usd": _money(mrr * 12),
                "active_subscriptions": paid_count[at[ends[b]]] if begun else 0,
                "active_trials": trial_count[at[ends[b]]] if begun else 0,
                "new_subscriptions": new[b],
                "new_trials": trials[b],
                "trial_conversions": converted[b],
                "trial_to_paid": _ratio(converted[b], trials[b]),
                "churned_subscriptions": churned[b],
                "churn_rate": _ratio(churned[b], at_start),
                "refund_rate": _ratio(refunded[b], bought[b]),
                "arpu_usd": None if not profiles_at[b] else _money(net / profiles_at[b]),
                "arppu_usd": None if not payers[b] else _money(net / len(payers[b])),
            }
        )
    return rows


def cohorts(txs: list[Tx], first_month: date, last_month: date, now: datetime) -> list[dict[str, Any]]:
    """Monthly retention of the subscriptions first paid for in each month from ``first_month``
    to ``last_month`` that has any (months without a first payment are left out)."""
    chains: dict[tuple, list[Tx]] = defaultdict(list)
    for tx in txs:
        if tx.paid and tx.months is not None and tx.refunded_at is None:
            chains[tx.chain].append(tx)
    by_cohort: dict[date, list[list[Tx]]] = defaultdict(list)
    for chain_txs in chains.values():
        first = min(tx.purchased_at for tx in chain_txs)
        by_cohort[date(first.year, first.month, 1)].append(chain_txs)
    window = (date(first_month.year, first_month.month, 1), last_month)
    this_month = _month_number(now)
    found = []
    for month in sorted(month for month in by_cohort if window[0] <= month <= window[1]):
        members = by_cohort[month]
        first = month.year * 12 + month.month - 1
        kept = [0] * (this_month - first + 1)
        for chain_txs in members:
            covered = set()
            for tx in chain_txs:
                last = (
                    this_month
                    if tx.ends_at is None or tx.ends_at > now
                    else _month_number(tx.ends_at - timedelta(microseconds=1))
                )
                covered.update(range(_month_number(tx.purchased_at) - first, last - first + 1))
            for offset in covered:
                kept[offset] += 1
        retention = [_ratio(count, len(members)) for count in kept]
        found.append({"cohort": month.strftime("%Y-%m"), "subscriptions": len(members), "retention": retention})
    return found


def _month_number(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1
