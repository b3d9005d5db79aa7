"""Cohort analyses: the cohort table (``metrics/cohort/``), realised LTV (``metrics/ltv/``) and
subscription retention (``metrics/retention/``). Pure.

A cohort is a group of users by when they started (installed, paid first, or began a trial) in
one period of the window; its columns are renewals (the first payment, the second, ...) or days
since the start. Everything counts up to now.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from subledger.client_api.facts import ACCOUNTS, Chain, Money, Sale, User
from subledger.client_api.periods import Periods
from subledger.client_api.tally import TOTAL, money, percent, segment_of

DEFAULT_DAYS = [0, 3, 7, 14, 30, 60, 90, 180, 365]
SHORT = {"revenue": "r", "proceeds": "p", "net_revenue": "nr"}  # arpu, appu, anrpu...


@dataclass
class Cohort:
    title: str
    kind: str  # total, period, segment or compare
    start: str  # the first day of its period (the window's for a total)
    users: list[User]
    sales: list[Sale]  # the sales its figures count


def grouped(
    members: list[tuple[User, datetime, list[Sale], str]], span: Periods, segment: bool, compare: Periods | None
) -> list[Cohort]:
    """Cohorts of (user, when they started, their sales, their segment): the total, then one per
    period (or per segment, when the answer is split by one), then the comparison window's."""
    total = Cohort(TOTAL, "total", span.labels[0].isoformat(), [], [])
    parts: dict[Any, Cohort] = {}
    extra = Cohort("Compare", "compare", compare.labels[0].isoformat(), [], []) if compare else None
    for user, started, sales, name in members:
        if extra and compare and compare.index(started) is not None:
            extra.users.append(user)
            extra.sales.extend(sales)
        index = span.index(started)
        if index is None:
            continue
        key = name if segment else index
        if key not in parts:
            label = span.labels[index].isoformat()
            parts[key] = Cohort(name if segment else label, "segment" if segment else "period", label, [], [])
        for cohort in (total, parts[key]):
            cohort.users.append(user)
            cohort.sales.extend(sales)
    ordered = [parts[key] for key in sorted(parts)]
    return [total, *ordered, *([extra] if extra else [])]


def _paid(sales: list[Sale]) -> list[Sale]:
    return [sale for sale in sales if sale.paid and sale.subscription]


def _kept(sales: list[Sale]) -> Money:
    """What sales brought and kept: refunded ones bring nothing."""
    return sum((sale.money for sale in sales if sale.refunded_at is None), Money())


def _columns(period_type: str, days: list[int] | None, sales: list[Sale]) -> list[int]:
    if period_type == "days":
        return sorted(set(days or DEFAULT_DAYS))
    return list(range(1, max((sale.number for sale in sales), default=0) + 1)) or [1]


def _within(period_type: str, column: int, sale: Sale, starts: dict[Any, datetime]) -> bool:
    """Whether a sale counts in a column: its renewal number, or the days since its user started."""
    if period_type == "days":
        return sale.purchased_at <= starts[sale.user.profile_id] + timedelta(days=column)
    return sale.number == column


# The cohort table ------------------------------------------------------------------


def _per(amount: Money, count: int, prefix: str, suffix: str) -> dict[str, float]:
    """``a{r,p,nr}p{suffix}_usd``: an amount per user, per payer or per subscriber."""
    share = amount.scaled(Decimal(1) / count) if count else Money()
    return {f"{prefix}{SHORT[name]}{suffix}_usd": money(share, name) for name in ACCOUNTS}


def _per_all(amount: Money, installs: int, payers: int, subscribers: int, prefix: str = "") -> dict[str, float]:
    found: dict[str, float] = {}
    for count, suffix in ((subscribers, "pas"), (payers, "ppu"), (installs, "pu")):
        found |= {f"{prefix}{key}": value for key, value in _per(amount, count, "a", suffix).items()}
    return found


def cohort_table(
    cohorts: list[Cohort], period_type: str, days: list[int] | None, months: int, now: datetime
) -> list[dict[str, Any]]:
    """The contract's CohortSegment rows: cohorts of users by install, by renewal or by day."""
    rows = []
    for cohort in cohorts:
        installed = {user.profile_id: user.installed_at for user in cohort.users}
        paid = _paid(cohort.sales)
        installs, payers = len(cohort.users), len({sale.user.profile_id for sale in paid})
        total = _kept(paid)
        values: list[dict[str, Any]] = []
        for column in _columns(period_type, days, paid):
            counts = [sale for sale in paid if _within(period_type, column, sale, installed)]
            subscribers = len({sale.user.profile_id for sale in counts})
            amount = _kept(counts)
            first = values[0] if values else None
            value = {
                **_per_all(amount, installs, payers, subscribers),
                "installs": installs,
                "period": column,
                **{f"{name}_usd": money(amount, name) for name in ACCOUNTS},
                "subscriptions": len(counts),
                "subscribers": subscribers,
                "currently_active_period": _under_way(period_type, column, paid, cohort.users, now),
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
                "total_installs": installs,
                "total_subscriptions": len({sale.chain for sale in paid}),
                "total_paid_subscribers": payers,
                **{f"total_{name}_usd": money(total, name) for name in ACCOUNTS},
                **_per_all(total, installs, payers, len({sale.chain for sale in paid}), "total_"),
                "predict": _predict(paid, values, months) if period_type == "renewals" else None,
                "values": values,
            }
        )
    return rows


def _under_way(period_type: str, column: int, paid: list[Sale], users: list[User], now: datetime) -> bool:
    """Whether a column can still grow: a sale of that renewal still runs, or its day is to come."""
    if period_type == "days":
        return any(user.installed_at + timedelta(days=column) > now for user in users)
    return any(sale.number == column and sale.covers(now) for sale in paid)


def _predict(paid: list[Sale], values: list[dict[str, Any]], months: int) -> dict[str, Any] | None:
    """Revenue ``months`` after the first payment, predicted: the renewals to come within those
    months each keep the share of subscriptions the cohort's completed renewals kept on average,
    at the last renewal's revenue per subscription. None without two completed renewals."""
    done = [value for value in values if not value["currently_active_period"]]
    kept = [
        later["subscriptions"] / earlier["subscriptions"]
        for earlier, later in zip(done, done[1:], strict=False)
        if earlier["subscriptions"]
    ]
    lengths = [sale.months for sale in paid if sale.number == 1 and sale.months]
    if not kept or not lengths:
        return None
    share = Decimal(str(sum(kept) / len(kept)))
    renewals = int(months / median(lengths))
    last = values[-1]
    per_subscription = {
        name: Decimal(str(last[f"{name}_usd"])) / last["subscriptions"] if last["subscriptions"] else 0
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


def ltv(cohorts: list[Cohort], period_type: str, now: datetime) -> dict[str, dict[str, Any]]:
    """Realised LTV by revenue, proceeds and net revenue: what a cohort of paying users brought
    by each renewal (or day since their first payment), per user of the cohort."""
    answer = {}
    for account in ACCOUNTS:
        rows = []
        for cohort in cohorts:
            size = len(cohort.users)
            first_paid: dict[Any, datetime] = {}  # each user's first payment, of any subscription
            for sale in sorted(cohort.sales, key=lambda sale: sale.purchased_at):
                first_paid.setdefault(sale.user.profile_id, sale.purchased_at)
            values = []
            for column in _columns(period_type, None, cohort.sales):
                if period_type == "renewals":
                    counts = [sale for sale in cohort.sales if sale.number <= column]
                else:
                    limit = timedelta(days=column)
                    counts = [s for s in cohort.sales if s.purchased_at <= first_paid[s.user.profile_id] + limit]
                values.append({"period": column, "value": _ltv(_kept(counts), size, account)})
            rows.append(
                {
                    "title": cohort.title,
                    "type": cohort.kind,
                    "value": _ltv(_kept(cohort.sales), size, account),
                    "values": values,
                    "cohort_size": size,
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
    return money(amount.scaled(Decimal(1) / size), account) if size else 0.0


# Retention -------------------------------------------------------------------------

STEP_TITLES = {0: "Trial", 1: "Paid"}


def step_title(step: int) -> str:
    if step in STEP_TITLES:
        return STEP_TITLES[step]
    suffix = {2: "nd", 3: "rd"}.get(step % 10 if step % 100 not in (11, 12, 13) else 0, "th")
    return f"{step}{suffix} period"


def retention(cohorts: list[Cohort], use_trial: bool) -> list[dict[str, Any]]:
    """How many of each cohort's subscriptions reached each renewal (from their trial, with
    ``use_trial``), absolute and as a share of the first step."""
    rows = []
    for cohort in cohorts:
        reached: dict[Chain, int] = defaultdict(int)  # subscription: its last paid renewal
        for sale in cohort.sales:
            reached[sale.chain] = max(reached[sale.chain], sale.number)
        last = max(reached.values(), default=0)
        steps = range(0 if use_trial else 1, max(last, 1) + 1)
        counts = [sum(1 for number in reached.values() if number >= step) if step else len(reached) for step in steps]
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


def starting(users: list[User], use_trial: bool, segment: str | None) -> list[tuple[User, datetime, list[Sale], str]]:
    """Subscriptions by when they started: their trial (``use_trial``; those without one are left
    out) or their first payment; with the sales of that subscription."""
    found = []
    for user in users:
        chains: dict[Chain, list[Sale]] = defaultdict(list)
        for sale in user.sales:
            chains[sale.chain].append(sale)
        for sales in chains.values():
            first = next((sale for sale in sales if (sale.trial if use_trial else sale.number == 1)), None)
            if first is not None:
                later = sales if use_trial else [sale for sale in sales if sale.paid]
                found.append((user, first.purchased_at, later, segment_of(first, segment)))
    return found


def paying(users: list[User], segment: str | None) -> list[tuple[User, datetime, list[Sale], str]]:
    """Users who paid for a subscription, by their first payment; with their paid subscription sales."""
    found = []
    for user in users:
        paid = sorted(_paid(user.sales), key=lambda sale: sale.purchased_at)
        if paid:
            found.append((user, paid[0].purchased_at, paid, segment_of(paid[0], segment)))
    return found


def installed(users: list[User], segment: str | None) -> list[tuple[User, datetime, list[Sale], str]]:
    """Users by install, with all their sales."""
    return [(user, user.installed_at, user.sales, segment_of(user, segment)) for user in users]
