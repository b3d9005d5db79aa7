"""A user's journey: install, paywall view, trial, first payment, each renewal. Conversion from
one step to a later one (``metrics/conversion/``) and the funnel through them all
(``metrics/funnel/``). Pure.

A user's renewals are those of their first subscription (the one they first paid for). A step is
reached at the first moment it happens; a conversion counts whenever it happens, up to now.
"""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from dateutil.relativedelta import relativedelta

from subledger.client_api.cohorts import step_title
from subledger.client_api.facts import Sale, User
from subledger.client_api.periods import Periods
from subledger.client_api.tally import TOTAL, percent, segment_of
from subledger.core.errors import bad_request
from subledger.core.fields import whole_number

INSTALL, PAYWALL, TRIAL = -2, -1, 0
_NAMED = {"install": INSTALL, "-2": INSTALL, "paywall": PAYWALL, "-1": PAYWALL, "trial": TRIAL, "0": TRIAL}
_LONG = re.compile(r"([0-9]{1,2})\+")  # "6+": still paying 6 months after the first payment
_MAX_RENEWAL = 999


@dataclass(frozen=True)
class Step:
    number: int  # INSTALL, PAYWALL, TRIAL, or the renewal (1: the first payment)
    months: int = 0  # for "N+": still paying N months after the first payment

    @property
    def rank(self) -> tuple[int, int]:
        return (1, self.months) if self.months else (0, self.number)

    @property
    def title(self) -> str:
        if self.months:
            return f"more than {self.months} months" if self.months % 12 else f"more than {self.months // 12} year"
        return {INSTALL: "Install", PAYWALL: "Paywall view"}.get(self.number) or step_title(self.number)

    @property
    def slug(self) -> str:
        return self.title.lower().replace(" ", "_")


def step(value: str | None, source: str) -> Step:
    """A conversion state as the request names it: null or "install", "paywall", "trial" (or -2,
    -1, 0), a renewal's number (1 the first payment), or "6+" / "12+" (months after it)."""
    if value is None:
        return Step(INSTALL)
    text = value.strip().lower()
    if text in _NAMED:
        return Step(_NAMED[text])
    if (number := whole_number(text, 1, _MAX_RENEWAL)) is not None:
        return Step(number)
    if (found := _LONG.fullmatch(text)) and 1 <= int(found.group(1)) <= 60:
        return Step(1, int(found.group(1)))
    raise bad_request(
        "invalid_enumeration_member",
        source,
        f"{value!r} is not a state: null or install, paywall, trial, a payment's number (1 the first), or 6+ / 12+.",
    )


def _first_subscription(user: User) -> list[Sale]:
    """The paid sales of the subscription the user first paid for, in order."""
    firsts = [sale for sale in user.sales if sale.number == 1]
    if not firsts:
        return []
    chain = min(firsts, key=lambda sale: sale.purchased_at).chain
    return sorted((sale for sale in user.sales if sale.chain == chain and sale.number), key=lambda sale: sale.number)


def reached(user: User, at: Step) -> datetime | None:
    """When the user first reached a step (None: not yet)."""
    if at.number == INSTALL:
        return user.installed_at
    if at.number == PAYWALL:
        return user.first_paywall_view
    if at.number == TRIAL:
        return min((sale.purchased_at for sale in user.sales if sale.trial), default=None)
    paid = _first_subscription(user)
    if at.months:
        if not paid:
            return None
        since = paid[0].purchased_at + relativedelta(months=at.months)
        return next((sale.purchased_at for sale in paid if sale.purchased_at >= since), None)
    return paid[at.number - 1].purchased_at if len(paid) >= at.number else None


def check_order(start: Step, end: Step) -> None:
    if end.rank <= start.rank:
        raise bad_request("value_error", "to_period", f"{end.title} does not come after {start.title}.")


# [started, converted] by segment and period
Pairs = dict[str, list[list[int]]]


def _pairs(window: Periods) -> Pairs:
    return defaultdict(lambda: [[0, 0] for _ in window.labels])


@dataclass
class ConversionSums:
    start: Step
    end: Step
    span: Periods
    compare: Periods | None
    counts: Pairs = field(init=False)
    compared: Pairs = field(init=False)

    def __post_init__(self) -> None:
        self.counts = _pairs(self.span)
        self.compared = _pairs(self.compare or self.span)


def add_to_conversion(sums: ConversionSums, users: list[User], segment: str | None, by_install: bool) -> None:
    """Count the users who reached the start in a period (were installed in it, ``by_install``),
    and which of them have reached the end since."""
    windows = [(sums.span, sums.counts, segment), *([(sums.compare, sums.compared, None)] if sums.compare else [])]
    for user in users:
        began = reached(user, sums.start)
        if began is None:
            continue
        finished = reached(user, sums.end)
        converted = int(finished is not None and finished >= began)
        for window, counts, split in windows:
            index = window.index(user.installed_at if by_install else began)
            if index is not None:
                for name in {TOTAL, segment_of(user, split)}:
                    counts[name][index][0] += 1
                    counts[name][index][1] += converted


def conversion(sums: ConversionSums, unit: str, earliest: date | None) -> dict[str, Any]:
    """The share of users who reached the start in each period and have reached the end since,
    in the contract's ConversionDataResponse shape."""
    start, end, span = sums.start, sums.end, sums.span
    totals = sums.counts[TOTAL]
    begun, converted = sum(pair[0] for pair in totals), sum(pair[1] for pair in totals)
    compared = sums.compared[TOTAL] if sums.compare else None
    rows = [
        {
            "title": name,
            "type": "total" if name == TOTAL else "segment",
            "values": [
                {"date": label.isoformat(), "value": percent(done, began), "value_from": began, "value_to": done}
                for label, (began, done) in zip(span.labels, pairs, strict=True)
            ],
        }
        for name, pairs in sorted(sums.counts.items(), key=lambda item: (item[0] != TOTAL, item[0]))
    ]
    return {
        "data": rows,
        "value": percent(converted, begun),
        "value_from": begun,
        "value_to": converted,
        "compare_value_from": sum(pair[0] for pair in compared) if compared else None,
        "compare_value_to": sum(pair[1] for pair in compared) if compared else None,
        "title": f"Conversion rate from {start.title} to {end.title}",
        "type": "multi",
        "default_aggregation": "sum",
        "description": f"Of the users who reached {start.title} in a period, the share that has reached "
        f"{end.title} since, at any time up to now: (converted / started) * 100%.",
        "metric_name": f"from_{start.slug}_to_{end.slug}_conversion",
        "is_json": True,
        "unit": "percent",
        "recommended_period": {
            "date_from": (earliest or span.labels[0]).isoformat(),
            "date_to": span.last.isoformat(),
            "period_unit": unit,
        },
    }


# The funnel ------------------------------------------------------------------------


def _steps_reached(user: User) -> set[int]:
    """The funnel's steps a user reached: a paid user who skipped the trial or the paywall still
    counts from installation on at each step they did reach."""
    steps = {INSTALL}
    if user.first_paywall_view is not None:
        steps.add(PAYWALL)
    if any(sale.trial for sale in user.sales):
        steps.add(TRIAL)
    steps.update(range(1, len(_first_subscription(user)) + 1))
    return steps


@dataclass
class FunnelSums:
    span: Periods
    compare: Periods | None
    # users at each (step, period of install), by segment; "Compare" for the comparison window's
    reached: dict[str, Counter[tuple[int, int]]] = field(default_factory=lambda: defaultdict(Counter))


COMPARE = "Compare"


def add_to_funnel(sums: FunnelSums, users: list[User], segment: str | None) -> None:
    """Count users installed in the window (and in the comparison window) at each step they reached."""
    for user in users:
        steps = _steps_reached(user)
        places = []
        if (index := sums.span.index(user.installed_at)) is not None:
            places += [(name, index) for name in {TOTAL, segment_of(user, segment)}]
        if sums.compare and (index := sums.compare.index(user.installed_at)) is not None:
            places.append((COMPARE, index))
        for name, index in places:
            sums.reached[name].update((rung, index) for rung in steps)


def funnel(sums: FunnelSums) -> list[dict[str, Any]]:
    """Users installed in the window through each step of the journey (FunnelSegment rows): the
    total, each segment, then the comparison window's total."""
    last = max((rung for name, found in sums.reached.items() if name != COMPARE for rung, _ in found), default=1)
    ladder = [INSTALL, PAYWALL, TRIAL, *range(1, max(last, 1) + 1)]
    names = sorted(name for name in sums.reached if name not in (TOTAL, COMPARE))
    rows = [_funnel_row(name, sums.reached[name], ladder, sums.span) for name in (TOTAL, *names)]
    if sums.compare:
        rows.append({**_funnel_row(COMPARE, sums.reached[COMPARE], ladder, sums.compare), "type": "compare"})
    return rows


def _funnel_row(name: str, reached: Counter[tuple[int, int]], ladder: list[int], span: Periods) -> dict[str, Any]:
    by_period = [[reached[(rung, index)] for index in range(len(span.labels))] for rung in ladder]
    counts = [sum(periods) for periods in by_period]
    values = []
    for position, (rung, count) in enumerate(zip(ladder, counts, strict=True)):
        # Steps are not nested (a user may pay without a trial): more at the next step is no drop.
        following = min(counts[position + 1], count) if position + 1 < len(counts) else count
        values.append(
            {
                "period": rung,
                "title": "Paywall displayed" if rung == PAYWALL else Step(rung).title,
                "value": count,
                "value_relative": percent(count, counts[0]),
                "relative_changes": percent(count, counts[position - 1]) if position else 100.0,
                "following_changes": {
                    "title": "Drop off",
                    "value": count - following,
                    "value_relative": percent(count - following, count),
                },
                "churn_reason_title": "",
                "churn_reasons": [],
                "values": [
                    {"date": label.isoformat(), "value": n}
                    for label, n in zip(span.labels, by_period[position], strict=True)
                ],
            }
        )
    return {"title": name, "type": "total" if name == TOTAL else "segment", "values": values}
