"""What one profile's ledger adds to its app's metric rollups. Pure: no I/O.

A write computes the tally of the profile's ledger before and after, and the
rollups take the difference; a rebuild sums the tallies of every profile. So the
figures are the definitions in ``rules`` computed once per write instead of per query.

Each figure is attributed to one transaction's store, product, country and
environment, the key a query filters on: revenue and refunds to the transaction
paid or refunded; coverage (active subscriptions and trials, MRR) to the
transaction covering the moment; a new subscription and its cohort to its first
paid transaction; a trial and its conversion to the trial; a churn to the paid
transaction that lasted longest.
"""

from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from itertools import product
from typing import Any, cast

from subledger.core.tables import DAY_MEASURES
from subledger.metrics.rules import NANOS, PERIODS, Tx, bucket_start, month_number

ANY = "*"  # a payer pattern's "any value"
MEASURE = {name: index for index, name in enumerate(DAY_MEASURES)}

Key = tuple[str, str, str, str]  # store, product, country, environment


def nanos(usd: Decimal) -> int:
    return int((usd * NANOS).to_integral_value(ROUND_HALF_EVEN))


@dataclass
class Tally:
    days: dict[tuple[date, Key], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * len(MEASURE)))
    # The keys paid for in each (period, bucket); the profile is a payer of every pattern of them.
    payers: dict[tuple[str, date], set[Key]] = field(default_factory=lambda: defaultdict(set))
    cohorts: dict[tuple[date, int, Key], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    coverage: list[dict[str, Any]] = field(default_factory=list)  # what ends after ``open_after`` or never

    def add(self, moment: datetime, key: Key, **measures: int) -> None:
        row = self.days[(moment.date(), key)]
        for name, value in measures.items():
            row[MEASURE[name]] += value

    def cover(self, kind: str, tx: Tx, starts_at: datetime, ends_at: datetime | None, mrr: int) -> None:
        self.coverage.append({"kind": kind, "starts_at": starts_at, "ends_at": ends_at, "mrr": mrr, **_key(tx.key)})


def tally(txs: list[Tx], open_after: datetime) -> Tally:
    """The profile's contribution to every rollup; ``coverage`` keeps only what ends after ``open_after``."""
    result = Tally()
    chains: dict[tuple[str, str], list[Tx]] = defaultdict(list)
    for tx in sorted(txs, key=lambda tx: (tx.purchased_at, tx.store_transaction_id)):
        chains[tx.chain].append(tx)
        if not tx.paid:
            continue
        result.add(tx.purchased_at, tx.key, gross=nanos(tx.usd), purchases=1)
        for group in _payer_groups(tx.purchased_at.date()):
            result.payers[group].add(tx.key)
        if tx.refunded_at is not None:
            result.add(tx.refunded_at, tx.key, refunds=nanos(tx.usd), refunded=1)
    for chain in chains.values():
        _subscription(result, [tx for tx in chain if tx.months is not None], open_after)
    return result


@lru_cache(maxsize=4096)
def _payer_groups(day: date) -> tuple[tuple[str, date], ...]:
    """The (period, bucket) of each period that holds the day."""
    return tuple((period, bucket_start(period, day)) for period in PERIODS)


@lru_cache(maxsize=4096)
def _patterns(key: Key) -> tuple[Key, ...]:
    """The key with each part kept or matching any value: 16 patterns."""
    return cast(tuple[Key, ...], tuple(product(*((part, ANY) for part in key))))  # each of four parts


def _subscription(result: Tally, txs: list[Tx], open_after: datetime) -> None:
    """A subscription's starts, trials, churn, coverage and cohort (``txs`` in purchase order)."""
    paid = [tx for tx in txs if tx.paid]
    trials = [tx for tx in txs if tx.trial and not tx.paid]
    if paid:
        result.add(paid[0].purchased_at, paid[0].key, new_subscriptions=1)
        last = max(paid, key=lambda tx: (tx.ends_at is None, tx.ends_at or tx.purchased_at))
        if last.ends_at is not None:
            result.add(last.ends_at, last.key, churned=1)
            if last.ends_at > open_after:
                result.cover("churn", last, last.ends_at, last.ends_at, 0)
    if trials:
        converted = bool(paid) and paid[0].purchased_at >= trials[0].purchased_at
        result.add(trials[0].purchased_at, trials[0].key, new_trials=1, trial_conversions=int(converted))
    _coverage(result, "paid", paid, open_after)
    _coverage(result, "trial", [tx for tx in txs if tx.trial], open_after)
    _cohort(result, [tx for tx in paid if tx.refunded_at is None])


def _coverage(result: Tally, kind: str, txs: list[Tx], open_after: datetime) -> None:
    """Each transaction covers from its purchase to its end, or until the next one takes over
    (an upgrade, a renewal bought early), so a subscription counts once at a time."""
    change = f"{kind}_change"
    for index, tx in enumerate(txs):
        end = tx.ends_at
        if index + 1 < len(txs):
            taken_over = txs[index + 1].purchased_at
            end = taken_over if end is None else min(end, taken_over)
        if end is not None and end <= tx.purchased_at:
            continue
        mrr = nanos(tx.usd / tx.months) if kind == "paid" and tx.months else 0
        result.add(tx.purchased_at, tx.key, **{change: 1, "mrr_change": mrr})
        if end is not None:
            result.add(end, tx.key, **{change: -1, "mrr_change": -mrr})
        if end is None or end > open_after:
            result.cover(kind, tx, tx.purchased_at, end, mrr)


def _cohort(result: Tally, txs: list[Tx]) -> None:
    """The months after the first paid one that some unrefunded paid transaction covers."""
    if not txs:
        return
    first = txs[0]
    first_month = month_number(first.purchased_at)
    cohort = date(first.purchased_at.year, first.purchased_at.month, 1)
    covered: set[int] = set()
    onward = None  # from this month on for ever
    for tx in txs:
        start = month_number(tx.purchased_at) - first_month
        if tx.ends_at is None:
            onward = start if onward is None else min(onward, start)
        else:
            covered.update(range(start, month_number(tx.ends_at - timedelta(microseconds=1)) - first_month + 1))
    for offset in covered:
        if onward is None or offset < onward:
            result.cohorts[(cohort, offset, first.key)][0] += 1
    if onward is not None:
        result.cohorts[(cohort, onward, first.key)][1] += 1


def _changed(into: dict[Any, list[int]], before: dict[Any, list[int]], after: dict[Any, list[int]]) -> None:
    """Add to ``into`` each entry's ``after`` values minus its ``before`` ones, where they differ."""
    for entry in before.keys() | after.keys():
        old, new = before.get(entry), after.get(entry)
        if old != new:
            row = into[entry]
            for index, value in enumerate(new or ()):
                row[index] += value
            for index, value in enumerate(old or ()):
                row[index] -= value


def _key(key: Key) -> dict[str, str]:
    return dict(zip(("store", "product", "country", "environment"), key, strict=True))


class Totals:
    """A sum of tallies: every profile's (a rebuild), or of changes, each a profile's after minus
    before (a write, a page of a repricing)."""

    def __init__(self) -> None:
        self.days: dict[tuple[date, Key], list[int]] = defaultdict(lambda: [0] * len(MEASURE))
        self.payers: dict[tuple[str, Key, date], int] = defaultdict(int)
        self.cohorts: dict[tuple[date, int, Key], list[int]] = defaultdict(lambda: [0, 0])

    def absorb(self, tally: Tally) -> None:
        """Add a profile's tally."""
        for entry, values in tally.days.items():
            row = self.days[entry]
            for index, value in enumerate(values):
                row[index] += value
        self.add_payers(tally, 1)
        for cohort, (covered, onward) in tally.cohorts.items():
            counts = self.cohorts[cohort]
            counts[0] += covered
            counts[1] += onward

    def add_change(self, before: Tally, after: Tally) -> None:
        """Add what a change of a profile's ledger does: ``after`` minus ``before``.

        Most entries of the two tallies are the same (a change touches a transaction or two of
        the ledger): those are compared, not subtracted measure by measure."""
        _changed(self.days, before.days, after.days)
        same = {group for group, keys in after.payers.items() if before.payers.get(group) == keys}
        self.add_payers(after, 1, skip=same)
        self.add_payers(before, -1, skip=same)
        _changed(self.cohorts, before.cohorts, after.cohorts)

    def add_payers(self, tally: Tally, sign: int, skip: AbstractSet[tuple[str, date]] = frozenset()) -> None:
        """Count the tally's profile as a payer (``sign`` -1: no longer) of every pattern of the
        keys it paid for in each bucket, leaving out the ``skip`` buckets."""
        for (period, bucket), keys in tally.payers.items():
            if (period, bucket) in skip:
                continue
            for pattern in set().union(*map(_patterns, keys)):
                self.payers[(period, pattern, bucket)] += sign

    def rows(self) -> tuple[list[dict[str, Any]], ...]:
        """(days, payers, cohorts) rows that add something, in key order (so that concurrent
        writers lock rows in one order)."""
        days = [
            {"day": day, **_key(key), **dict(zip(DAY_MEASURES, values, strict=True))}
            for (day, key), values in sorted(self.days.items())
            if any(values)
        ]
        payers = [
            {"period": period, **_key(key), "bucket": bucket, "profiles": count}
            for (period, key, bucket), count in sorted(self.payers.items())
            if count
        ]
        cohorts = [
            {"cohort": cohort, "month_offset": offset, **_key(key), "covered": covered, "onward": onward}
            for (cohort, offset, key), (covered, onward) in sorted(self.cohorts.items())
            if covered or onward
        ]
        return days, payers, cohorts
