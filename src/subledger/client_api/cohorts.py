"""Cohort analyses: the cohort table (``metrics/cohort/``), realised LTV (``metrics/ltv/``) and
subscription retention (``metrics/retention/``). Pure.

A cohort is a group of users by when they started (installed, paid first, or began a trial) in
one period of the window; its columns are renewals (the first payment, the second, ...) or days
since the start. Everything counts up to now.

Users are added a page at a time (``add``) into sums that only grow, so that memory holds one
page of the ledger and the sums, whatever the size of the app; the answer is made from the sums.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from subledger.client_api.facts import ACCOUNTS, Chain, Money, Sale, User
from subledger.client_api.periods import Periods
from subledger.client_api.tally import TOTAL, money, percent, segment_of

DEFAULT_DAYS = [0, 3, 7, 14, 30, 60, 90, 180, 365]
SHORT = {"revenue": "r", "proceeds": "p", "net_revenue": "nr"}  # arpu, appu, anrpu...
Key = tuple[int, Any]  # how cohorts are ordered: the total, the periods (or segments), the comparison


@dataclass(frozen=True)
class Cohort:
    title: str
    kind: str  # total, period, segment or compare
    start: str  # the first day of its period (the window's for a total)


def cohorts_of(
    started: datetime, name: str, span: Periods, by_segment: bool, compare: Periods | None
) -> Iterator[tuple[Key, Cohort]]:
    """The cohorts a member who started then belongs to: the total and its period's (or its
    segment's), if it started in the window; the comparison window's, if in that."""
    index = span.index(started)
    if index is not None:
        label = span.labels[index].isoformat()
        yield (0, 0), Cohort(TOTAL, "total", span.labels[0].isoformat())
        if by_segment:
            yield (1, name), Cohort(name, "segment", label)
        else:
            yield (1, index), Cohort(label, "period", label)
    if compare is not None and compare.index(started) is not None:
        yield (2, 0), Cohort("Compare", "compare", compare.labels[0].isoformat())


def _paid(sales: list[Sale]) -> list[Sale]:
    return [sale for sale in sales if sale.paid and sale.subscription]


def _kept(sales: list[Sale]) -> Money:
    """What sales brought and kept: refunded ones bring nothing."""
    return sum((sale.money for sale in sales if sale.refunded_at is None), Money())


def _renewals(columns: dict[int, Any]) -> list[int]:
    return list(range(1, max(columns, default=0) + 1)) or [1]


class Grouped:
    """Sums by cohort, in cohort order."""

    def __init__(self, span: Periods, by_segment: bool, compare: Periods | None, make: type):
        self.span, self.by_segment, self.compare, self.make = span, by_segment, compare, make
        self.found: dict[Key, tuple[Cohort, Any]] = {}

    def sums_of(self, started: datetime, name: str) -> list[Any]:
        """The sums of each cohort a member who started then belongs to."""
        found = []
        for key, cohort in cohorts_of(started, name, self.span, self.by_segment, self.compare):
            if key not in self.found:
                self.found[key] = (cohort, self.make())
            found.append(self.found[key][1])
        return found

    def ordered(self) -> list[tuple[Cohort, Any]]:
        if (0, 0) not in self.found:  # nothing started in the window: an empty total all the same
            self.found[(0, 0)] = (Cohort(TOTAL, "total", self.span.labels[0].isoformat()), self.make())
        return [self.found[key] for key in sorted(self.found)]  # periods by index, segments by name


# The cohort table ------------------------------------------------------------------


@dataclass
class Column:
    subscriptions: int = 0
    subscribers: int = 0
    amount: Money = field(default_factory=Money)
    under_way: bool = False


@dataclass
class TableSums:
    installs: int = 0
    payers: int = 0
    subscriptions: int = 0
    total: Money = field(default_factory=Money)
    columns: dict[int, Column] = field(default_factory=lambda: defaultdict(Column))
    lengths: Counter[Decimal] = field(default_factory=Counter)  # first payments' periods, in months


def add_to_table(grouped: Grouped, users: list[User], period_type: str, days: list[int] | None, now: datetime) -> None:
    """Add users to the cohort table's sums, each in the cohort of their install."""
    wanted = sorted(set(days or DEFAULT_DAYS))
    for user in users:
        paid = _paid(user.sales)
        by_column: dict[int, list[Sale]] = defaultdict(list)
        if period_type == "days":
            for column in wanted:
                limit = user.installed_at + timedelta(days=column)
                by_column[column] = [sale for sale in paid if sale.purchased_at <= limit]
        else:
            for sale in paid:
                by_column[sale.number].append(sale)
        for sums in grouped.sums_of(user.installed_at, TOTAL):
            sums.installs += 1
            sums.payers += bool(paid)
            sums.subscriptions += len({sale.chain for sale in paid})
            sums.total += _kept(paid)
            sums.lengths.update(sale.months for sale in paid if sale.number == 1 and sale.months)
            for column in wanted if period_type == "days" else by_column:
                counted = by_column[column]
                summed = sums.columns[column]
                summed.subscriptions += len(counted)
                summed.subscribers += bool(counted)
                summed.amount += _kept(counted)
                if period_type == "days":
                    summed.under_way |= user.installed_at + timedelta(days=column) > now
                else:
                    summed.under_way |= any(sale.covers(now) for sale in counted)


def _per(amount: Money, count: int, prefix: str, suffix: str) -> dict[str, float]:
    """``a{r,p,nr}p{suffix}_usd``: an amount per user, per payer or per subscriber."""
    share = amount.scaled(Decimal(1) / count) if count else Money()
    return {f"{prefix}{SHORT[name]}{suffix}_usd": float(money(share, name)) for name in ACCOUNTS}


def _per_all(amount: Money, installs: int, payers: int, subscribers: int, prefix: str = "") -> dict[str, float]:
    found: dict[str, float] = {}
    for count, suffix in ((subscribers, "pas"), (payers, "ppu"), (installs, "pu")):
        found |= {f"{prefix}{key}": value for key, value in _per(amount, count, "a", suffix).items()}
    return found


def cohort_table(grouped: Grouped, period_type: str, days: list[int] | None, months: int) -> list[dict[str, Any]]:
    """The contract's CohortSegment rows: cohorts of users by install, by renewal or by day."""
    rows = []
    for cohort, sums in grouped.ordered():
        columns = sorted(set(days or DEFAULT_DAYS)) if period_type == "days" else _renewals(sums.columns)
        values: list[dict[str, Any]] = []
        for column in columns:
            summed = sums.columns.get(column, Column())
            first = values[0] if values else None
            value = {
                **_per_all(summed.amount, sums.installs, sums.payers, summed.subscribers),
                "installs": sums.installs,
                "period": column,
                **{f"{name}_usd": money(summed.amount, name) for name in ACCOUNTS},
                "subscriptions": summed.subscriptions,
                "subscribers": summed.subscribers,
                "currently_active_period": summed.under_way,
            }
            for name in (*(f"{account}_usd" for account in ACCOUNTS), "subscriptions", "subscribers"):
                relative = name.removesuffix("_usd") + "_relative"
                value[relative] = percent(Decimal(str(value[name])), Decimal(str(first[name]))) if first else 100.0
            values.append(value)
        rows.append(
            {
                "segment_start_date": cohort.start,
                "type": cohort.kind,
                "title": cohort.title,
                "total_installs": sums.installs,
                "total_subscriptions": sums.subscriptions,
                "total_paid_subscribers": sums.payers,
                **{f"total_{name}_usd": money(sums.total, name) for name in ACCOUNTS},
                **_per_all(sums.total, sums.installs, sums.payers, sums.subscriptions, "total_"),
                "predict": _predict(sums.lengths, values, months) if period_type == "renewals" else None,
                "values": values,
            }
        )
    return rows


def _median(counts: Counter[Decimal]) -> Decimal:
    ordered = sorted(counts.elements())
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _predict(lengths: Counter[Decimal], values: list[dict[str, Any]], months: int) -> dict[str, Any] | None:
    """Revenue ``months`` after the first payment, predicted: the renewals to come within those
    months each keep the share of subscriptions the cohort's completed renewals kept on average,
    at the last renewal's revenue per subscription. None without two completed renewals."""
    done = [value for value in values if not value["currently_active_period"]]
    kept = [
        later["subscriptions"] / earlier["subscriptions"]
        for earlier, later in zip(done, done[1:], strict=False)
        if earlier["subscriptions"]
    ]
    if not kept or not lengths:
        return None
    share = Decimal(str(sum(kept) / len(kept)))
    renewals = int(months / _median(lengths))
    last = values[-1]
    per_subscription = {
        name: Decimal(str(last[f"{name}_usd"])) / last["subscriptions"] if last["subscriptions"] else Decimal(0)
        for name in ACCOUNTS
    }
    predicted = {name: Decimal(str(sum(value[f"{name}_usd"] for value in values))) for name in ACCOUNTS}
    subscriptions = Decimal(last["subscriptions"])
    for _ in range(len(values), renewals):
        subscriptions *= share
        for name in ACCOUNTS:
            predicted[name] += subscriptions * per_subscription[name]
    return {"months": months, **{f"{name}_usd": money(predicted[name], name) for name in ACCOUNTS}}


# LTV -------------------------------------------------------------------------------


@dataclass
class LtvSums:
    size: int = 0
    total: Money = field(default_factory=Money)
    columns: dict[int, Money] = field(default_factory=lambda: defaultdict(Money))  # by renewal, or by day


def add_to_ltv(grouped: Grouped, users: list[User], segment: str | None, period_type: str) -> None:
    """Add the users who paid for a subscription to the LTV sums, each in the cohort of their
    first payment: what their payments brought by each renewal (or day since the first)."""
    for user in users:
        paid = sorted(_paid(user.sales), key=lambda sale: sale.purchased_at)
        if not paid:
            continue
        first = paid[0]
        for sums in grouped.sums_of(first.purchased_at, segment_of(first, segment)):
            sums.size += 1
            sums.total += _kept(paid)
            if period_type == "days":
                for column in DEFAULT_DAYS:
                    limit = first.purchased_at + timedelta(days=column)
                    sums.columns[column] += _kept([sale for sale in paid if sale.purchased_at <= limit])
            else:
                for sale in paid:
                    sums.columns[sale.number] += _kept([sale])


def ltv(grouped: Grouped, period_type: str) -> dict[str, dict[str, Any]]:
    """Realised LTV in revenue, proceeds and net revenue: what a cohort of paying users brought
    by each renewal (or day since their first payment), per user of the cohort."""
    answer = {}
    for account in ACCOUNTS:
        rows = []
        for cohort, sums in grouped.ordered():
            if period_type == "days":
                by_column = [(column, sums.columns.get(column, Money())) for column in DEFAULT_DAYS]
            else:  # by each renewal, what the payments up to it brought
                running, by_column = Money(), []
                for column in _renewals(sums.columns):
                    running += sums.columns.get(column, Money())
                    by_column.append((column, running))
            rows.append(
                {
                    "title": cohort.title,
                    "type": cohort.kind,
                    "value": _ltv(sums.total, sums.size, account),
                    "values": [
                        {"period": column, "value": _ltv(amount, sums.size, account)} for column, amount in by_column
                    ],
                    "cohort_size": sums.size,
                }
            )
        answer[account] = {
            "data": rows,
            "description": "<div>LTV (Lifetime Value) is the revenue a cohort brought to date, divided by the "
            "number of subscribers it started with. It is realised, not predicted.</div>",
            "value": rows[0]["value"],
            "unit": "USD",
            "title": "LTV",
        }
    return answer


def _ltv(amount: Money, size: int, account: str) -> float:
    return float(money(amount.scaled(Decimal(1) / size), account)) if size else 0.0


# Retention -------------------------------------------------------------------------

STEP_TITLES = {0: "Trial", 1: "Paid"}


def step_title(step: int) -> str:
    if step in STEP_TITLES:
        return STEP_TITLES[step]
    suffix = {2: "nd", 3: "rd"}.get(step % 10 if step % 100 not in (11, 12, 13) else 0, "th")
    return f"{step}{suffix} period"


def add_to_retention(grouped: Grouped, users: list[User], use_trial: bool, segment: str | None) -> None:
    """Add users' subscriptions to the retention sums, each in the cohort of when it started (its
    trial, with ``use_trial``; those without one are left out; else its first payment), counted
    by the last renewal it reached."""
    for user in users:
        chains: dict[Chain, list[Sale]] = defaultdict(list)
        for sale in user.sales:
            chains[sale.chain].append(sale)
        for sales in chains.values():
            first = next((sale for sale in sales if (sale.trial if use_trial else sale.number == 1)), None)
            if first is not None:
                reached = max(sale.number for sale in sales)
                for sums in grouped.sums_of(first.purchased_at, segment_of(first, segment)):
                    sums[reached] += 1


def retention(grouped: Grouped, use_trial: bool) -> list[dict[str, Any]]:
    """How many of each cohort's subscriptions reached each step, absolute and as a share of the
    first step."""
    rows = []
    for cohort, reached in grouped.ordered():
        steps = range(0 if use_trial else 1, max(max(reached, default=0), 1) + 1)
        counts = [sum(count for number, count in reached.items() if number >= step) for step in steps]
        first = counts[0] if counts else 0
        rows.append(
            {
                "title": cohort.title,
                "type": cohort.kind,
                "values": [
                    {"period": step, "title": step_title(step), "value": count, "value_relative": percent(count, first)}
                    for step, count in zip(steps, counts, strict=True)
                ],
            }
        )
    return rows
