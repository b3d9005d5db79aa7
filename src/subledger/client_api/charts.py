"""The analytics charts (``metrics/analytics/``): each a value per period, per segment, from the
facts. Pure.

A *flow* adds up what happened in a period (revenue, new trials, refunds); a *level* is read at
the end of each period, or now for the period under way (MRR, active subscriptions); a *ratio*
divides a period's revenue by its users or its payers. What each counts is written in the docs
(export-analytics.md), following the reference's descriptions.
"""

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from itertools import accumulate, zip_longest
from typing import Any
from uuid import UUID

from subledger.client_api.facts import ACCOUNTS, USER_FIELDS, Chain, Money, Sale, User
from subledger.client_api.periods import Periods
from subledger.client_api.tally import TOTAL, Series, money, segment_of

Amount = Money | int


@dataclass(frozen=True)
class Question:
    """What a chart is asked over: the sales and users the filters kept, the periods, the
    segmentation, whether flows count at their user's install, and now."""

    sales: list[Sale]
    users: list[User]
    span: Periods
    segment: str | None
    by_install: bool
    now: datetime


@dataclass(frozen=True)
class Chart:
    title: str
    kind: str  # flow, level or ratio
    unit: str  # USD or count
    description: str

    @property
    def in_money(self) -> bool:
        return self.unit == "USD"


CHARTS = {
    "revenue": Chart("Revenue", "flow", "USD", "Money from paid sales bought in the period, less refunds made in it."),
    "mrr": Chart("MRR", "level", "USD", "Active paid subscriptions' price per month at the period's end."),
    "arr": Chart("ARR", "level", "USD", "MRR times 12."),
    "arppu": Chart("ARPPU", "ratio", "USD", "The period's revenue per user who paid in it."),
    "arpu": Chart("ARPU", "ratio", "USD", "The period's revenue per user installed by its end."),
    "subscriptions_active": Chart(
        "Active subscriptions", "level", "count", "Subscriptions a paid, unrefunded sale covers at the period's end."
    ),
    "subscriptions_new": Chart(
        "New subscriptions", "flow", "count", "Subscriptions whose first paid sale was bought in the period."
    ),
    "subscriptions_renewal_cancelled": Chart(
        "Subscriptions renewal cancelled", "flow", "count", "Paid subscriptions whose renewal was turned off."
    ),
    "subscriptions_expired": Chart(
        "Subscriptions expired", "flow", "count", "Paid subscriptions whose access ended with nothing paid after."
    ),
    "trials_active": Chart("Active trials", "level", "count", "Trials running at the period's end."),
    "trials_new": Chart("New trials", "flow", "count", "Free trials started in the period."),
    "trials_renewal_cancelled": Chart(
        "Trials renewal cancelled", "flow", "count", "Trials whose renewal was turned off."
    ),
    "trials_expired": Chart("Trials expired", "flow", "count", "Trials that ended without a paid sale after them."),
    "grace_period": Chart("Grace period", "flow", "count", "Subscriptions that entered a grace period."),
    "billing_issue": Chart(
        "Billing issue", "flow", "count", "Subscriptions that entered billing issue (after any grace period)."
    ),
    "refund_events": Chart("Refund events", "flow", "count", "Paid sales refunded in the period."),
    "refund_money": Chart("Refund money", "flow", "USD", "Money of the paid sales refunded in the period."),
    "non_subscriptions": Chart("Non-subscriptions", "flow", "count", "Purchases that are not subscriptions."),
    "installs": Chart("Installs", "flow", "count", "Users (profiles) created in the period."),
}


def _moments(chart_id: str, sales: list[Sale], users: list[User], now: datetime) -> Iterator[tuple[Any, datetime]]:
    """Each thing a flow chart counts (a sale, or a user for installs) and when it happened."""
    if chart_id == "installs":
        yield from ((user, user.installed_at) for user in users)
        return
    by_chain: dict[Chain, list[Sale]] = defaultdict(list)
    for sale in sales:
        by_chain[sale.chain].append(sale)
    for sale in sales:
        moment = _when(chart_id, sale, by_chain[sale.chain], now)
        if moment is not None:
            yield sale, moment


def _when(chart_id: str, sale: Sale, chain: list[Sale], now: datetime) -> datetime | None:
    """When ``sale`` counts in a flow chart, None if it does not."""
    paid = sale.paid and sale.subscription
    if chart_id in ("revenue", "refund_money", "refund_events"):
        return sale.refunded_at if sale.paid else None  # revenue's purchases are added apart
    if chart_id == "subscriptions_new":
        return sale.purchased_at if sale.number == 1 else None
    if chart_id == "trials_new":
        return sale.purchased_at if sale.trial else None
    if chart_id == "non_subscriptions":
        return None if sale.subscription else sale.purchased_at
    if chart_id == "subscriptions_renewal_cancelled":
        return sale.renewal_cancelled_at if paid else None
    if chart_id == "trials_renewal_cancelled":
        return sale.renewal_cancelled_at if sale.trial else None
    if chart_id == "grace_period":
        return sale.billing_issue_at if sale.subscription and sale.grace_period_ends_at is not None else None
    if chart_id == "billing_issue":
        if not sale.subscription or sale.billing_issue_at is None:
            return None
        entered = sale.grace_period_ends_at or sale.billing_issue_at
        renewed = any(other.purchased_at > sale.purchased_at and other.purchased_at <= entered for other in chain)
        return None if renewed or entered > now else entered
    if chart_id == "subscriptions_expired":
        return _ended(sale, chain, now, lambda other: other.paid) if paid else None
    if chart_id == "trials_expired":
        return _ended(sale, chain, now, lambda other: other.paid or other.trial) if sale.trial else None
    raise AssertionError(chart_id)


def _ended(sale: Sale, chain: list[Sale], now: datetime, continues: Callable[[Sale], bool]) -> datetime | None:
    """When ``sale``'s access ended for good: by now, with no sale of the chain that ``continues``
    it bought after it and by that end."""
    end = sale.ends_at
    if end is None or end > now:
        return None
    later = (other for other in chain if other is not sale and continues(other))
    if any(sale.purchased_at <= other.purchased_at <= end for other in later):
        return None
    return end


def flow(chart_id: str, asked: Question) -> Series:
    """A flow chart's amounts by period; ``by_install`` counts each at its user's install instead."""
    series = Series(asked.span, money=CHARTS[chart_id].in_money)

    def add(item: Any, moment: datetime, amount: Amount) -> None:
        owner = item if isinstance(item, User) else item.user
        series.add(segment_of(item, asked.segment), owner.installed_at if asked.by_install else moment, amount)

    if chart_id == "revenue":
        for sale in asked.sales:
            if sale.paid:
                add(sale, sale.purchased_at, sale.money)
    for item, moment in _moments(chart_id, asked.sales, asked.users, asked.now):
        if chart_id == "revenue":
            add(item, moment, Money() - item.money)
        elif chart_id == "refund_money":
            add(item, moment, item.money)
        else:
            add(item, moment, 1)
    return series


def _read_at(asked: Question) -> list[datetime]:
    """Where a level is read: each period's end, or now for the period under way (periods that
    have not begun are left out)."""
    live = sum(1 for start in asked.span.starts[:-1] if start <= asked.now)
    return asked.span.ends(asked.now)[:live]


def _covered(ends: list[datetime], start: datetime, stop: datetime | None) -> tuple[int, int]:
    """The reads [lo, hi) that fall in [start, stop) (``ends`` in order; stop None: never)."""
    return bisect_left(ends, start), len(ends) if stop is None else bisect_left(ends, stop)


def level(chart_id: str, asked: Question) -> Series:
    """A level chart read at each period's end (now for the period under way; 0 after now): each
    sale (for MRR) or subscription (for counts) adds to the reads it covers, swept in one pass."""
    series = Series(asked.span, money=CHARTS[chart_id].in_money)
    ends = _read_at(asked)
    zero: Amount = Money() if series.money else 0
    steps: dict[str, list[Any]] = defaultdict(lambda: [zero] * (len(ends) + 1))  # changes at each read
    trials = chart_id == "trials_active"
    counted = [sale for sale in asked.sales if sale.subscription and (sale.trial if trials else sale.paid)]
    if series.money:
        for sale in counted:
            lo, hi = _covered(ends, sale.purchased_at, sale.ends_at)
            if sale.months and lo < hi:
                monthly = sale.money.scaled((12 if chart_id == "arr" else 1) / sale.months)
                changes = steps[segment_of(sale, asked.segment)]
                changes[lo] += monthly
                changes[hi] -= monthly
    else:  # a subscription counts once at a read, however many of its sales cover it
        spans: dict[tuple[Chain, str], list[tuple[int, int]]] = defaultdict(list)
        for sale in counted:
            spans[(sale.chain, segment_of(sale, asked.segment))].append(_covered(ends, sale.purchased_at, sale.ends_at))
        for (_, name), ranges in spans.items():
            changes = steps[name]
            reach = 0
            for lo, hi in sorted(ranges):
                lo = max(lo, reach)
                if lo < hi:
                    changes[lo] += 1
                    changes[hi] -= 1
                    reach = hi
    for name, changes in steps.items():
        running = zero
        for index in range(len(ends)):
            running += changes[index]
            series.put(name, index, running)
    return series


@dataclass
class Tally:
    """A chart's sums over some users, which add up with other users' (the ledger is read a page
    of users at a time): its amounts by period (a ratio's revenue), and a ratio's users."""

    series: Series
    users: dict[str, list[int]] = field(default_factory=dict)  # by period
    whole: dict[str, int] = field(default_factory=dict)  # over the window

    def __add__(self, other: "Tally") -> "Tally":
        users = {
            name: [a + b for a, b in zip_longest(self.users.get(name, []), other.users.get(name, []), fillvalue=0)]
            for name in self.users.keys() | other.users.keys()
        }
        whole = {
            name: self.whole.get(name, 0) + other.whole.get(name, 0) for name in self.whole.keys() | other.whole.keys()
        }
        return Tally(self.series + other.series, users, whole)


def _users(chart_id: str, asked: Question) -> tuple[dict[str, list[int]], dict[str, int]]:
    """A ratio's users by period and over the window: for ARPU those installed by each period's
    end; for ARPPU those with a paid sale in the period."""
    size = len(asked.span.labels)
    counts: dict[str, list[int]] = {}
    whole: dict[str, int] = defaultdict(int)
    if chart_id == "arppu":
        paid: dict[str, list[set[UUID]]] = defaultdict(lambda: [set() for _ in range(size)])
        payers: dict[str, set[UUID]] = defaultdict(set)
        for sale in asked.sales:
            index = asked.span.index(sale.purchased_at)
            if sale.paid and index is not None:
                for name in {TOTAL, segment_of(sale, asked.segment)}:
                    paid[name][index].add(sale.user.profile_id)
                    payers[name].add(sale.user.profile_id)
        for name, by_period in paid.items():
            counts[name] = [len(found) for found in by_period]
            whole[name] = len(payers[name])
    else:
        ends = asked.span.ends(asked.now)
        installs: dict[str, list[int]] = defaultdict(lambda: [0] * (size + 1))
        for user in asked.users:
            for name in {TOTAL, segment_of(user, asked.segment)}:
                installs[name][bisect_right(ends, user.installed_at)] += 1  # counted from the first end after it
                whole[name] += user.installed_at < asked.span.end
        for name, added in installs.items():
            counts[name] = list(accumulate(added[:size]))
    return counts, dict(whole)


def tally(chart_id: str, asked: Question) -> Tally:
    """A chart's sums over the users and sales asked about."""
    kind = CHARTS[chart_id].kind
    if kind == "ratio":
        return Tally(flow("revenue", replace(asked, by_install=False)), *_users(chart_id, asked))
    return Tally(level(chart_id, asked) if kind == "level" else flow(chart_id, asked))


def chart(chart_id: str, summed: Tally, asked: Question) -> tuple[Series, dict[str, Amount]]:
    """A chart's series and its value over the window, by segment (``TOTAL`` among them)."""
    kind = CHARTS[chart_id].kind
    series = summed.series
    if kind == "ratio":
        return _per_user(chart_id, summed, asked)
    if kind == "level":
        last = _last_read(asked.span, asked.now)
        return series, {name: amounts[last] for name, amounts in series.rows().items()}
    zero: Amount = Money() if series.money else 0
    return series, {name: sum(amounts, zero) for name, amounts in series.rows().items()}


def _per_user(chart_id: str, summed: Tally, asked: Question) -> tuple[Series, dict[str, Amount]]:
    """Revenue per user, by period and over the window."""
    # Users have no product or offer: split by one of those, ARPU divides by all the users.
    by_user = chart_id == "arppu" or asked.segment in USER_FIELDS
    per_user = Series(asked.span, money=True)
    totals: dict[str, Amount] = {}
    for name, amounts in summed.series.rows().items():
        pool = name if by_user else TOTAL
        counts = summed.users.get(pool, [0] * len(amounts))
        for index, amount in enumerate(amounts):
            if counts[index]:
                per_user.put(name, index, amount.scaled(Decimal(1) / counts[index]), total=False)
        whole = summed.whole.get(pool, 0)
        totals[name] = sum(amounts, Money()).scaled(Decimal(1) / whole) if whole else Money()
    return per_user, totals


def _last_read(span: Periods, now: datetime) -> int:
    """The last period a level is read in: the window's last, or the one under way now."""
    index = span.index(now)
    return len(span.labels) - 1 if index is None and now >= span.end else max(index or 0, 0)


def metric_data(
    chart_id: str,
    account: str | None,
    series: Series,
    values: dict[str, Amount],
    compared: tuple[Series, dict[str, Amount]] | None,
) -> dict[str, Any]:
    """One chart (in one of revenue, proceeds, net revenue for a chart in money) in the contract's
    MetricData shape."""
    about = CHARTS[chart_id]
    rows = series.answer(account)
    points = rows[0]["values"]
    compare_points = compared[0].answer(account)[0]["values"] if compared else None
    return {
        "data": rows,
        "value": money(values.get(TOTAL, 0), account),
        "value_from": points[0]["value"] if points else None,
        "value_to": points[-1]["value"] if points else None,
        "compare_value_from": compare_points[0]["value"] if compare_points else None,
        "compare_value_to": compare_points[-1]["value"] if compare_points else None,
        "title": account or chart_id,
        "type": "multi",
        "default_aggregation": {"flow": "sum", "level": "last", "ratio": "average"}[about.kind],
        "description": f"<div>{about.description}</div>",
        "metric_name": about.title,
        "is_json": True,
        "unit": about.unit,
        "recommended_period": None,
    }


def accounts_of(chart_id: str) -> tuple[str, ...] | tuple[None]:
    """The keys a chart answers under: revenue, proceeds and net revenue for money, else its id."""
    return ACCOUNTS if CHARTS[chart_id].in_money else (None,)
