"""A user's journey: install, paywall view, trial, first payment, each renewal. Conversion from
one step to a later one (``metrics/conversion/``) and the funnel through them all
(``metrics/funnel/``). Pure.

A user's renewals are those of their first subscription (the one they first paid for). A step is
reached at the first moment it happens; a conversion counts whenever it happens, up to now.
"""

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dateutil.relativedelta import relativedelta

from subledger.client_api.cohorts import step_title
from subledger.client_api.facts import Sale, User
from subledger.client_api.periods import Periods
from subledger.client_api.tally import TOTAL, percent, segment_of
from subledger.core.errors import bad_request

INSTALL, PAYWALL, TRIAL = -2, -1, 0
_NAMED = {"install": INSTALL, "-2": INSTALL, "paywall": PAYWALL, "-1": PAYWALL, "trial": TRIAL, "0": TRIAL}
_LONG = re.compile(r"(\d{1,2})\+")  # "6+": still paying 6 months after the first payment
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
    if text.isdigit() and 1 <= int(text) <= _MAX_RENEWAL:
        return Step(int(text))
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


def conversion(
    users: list[User],
    start: Step,
    end: Step,
    span: Periods,
    compare: Periods | None,
    segment: str | None,
    by_install: bool,
    unit: str,
    earliest: date | None,
) -> dict[str, Any]:
    """The share of users who reached ``start`` in each period (installed in it, ``by_install``)
    and have reached ``end`` since, in the contract's ConversionDataResponse shape."""
    if end.rank <= start.rank:
        raise bad_request("value_error", "to_period", f"{end.title} does not come after {start.title}.")

    def tally(window: Periods) -> dict[str, list[list[int]]]:
        counts: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in window.labels])
        for user in users:
            began = reached(user, start)
            index = None if began is None else window.index(user.installed_at if by_install else began)
            if index is None:
                continue
            finished = reached(user, end)
            converted = int(finished is not None and began is not None and finished >= began)
            for name in {TOTAL, segment_of(user, segment)}:
                counts[name][index][0] += 1
                counts[name][index][1] += converted
        return counts

    counts = tally(span)
    totals = counts[TOTAL]
    begun, converted = sum(pair[0] for pair in totals), sum(pair[1] for pair in totals)
    compared = tally(compare)[TOTAL] if compare else None
    rows = [
        {
            "title": name,
            "type": "total" if name == TOTAL else "segment",
            "values": [
                {"date": label.isoformat(), "value": percent(done, began), "value_from": began, "value_to": done}
                for label, (began, done) in zip(span.labels, pairs, strict=True)
            ],
        }
        for name, pairs in sorted(counts.items(), key=lambda item: (item[0] != TOTAL, item[0]))
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


def funnel(users: list[User], span: Periods, compare: Periods | None, segment: str | None) -> list[dict[str, Any]]:
    """Users installed in the window, through each step of the journey (FunnelSegment rows): the
    total, each segment, then the comparison window's total."""
    groups: dict[str, list[tuple[int, set[int]]]] = defaultdict(list)
    compared: list[tuple[int, set[int]]] = []
    for user in users:
        if compare and (index := compare.index(user.installed_at)) is not None:
            compared.append((index, _steps_reached(user)))
        index = span.index(user.installed_at)
        if index is not None:
            for name in {TOTAL, segment_of(user, segment)}:
                groups[name].append((index, _steps_reached(user)))
    last = max((max(steps) for members in groups.values() for _, steps in members), default=1)
    ladder = [INSTALL, PAYWALL, TRIAL, *range(1, max(last, 1) + 1)]
    rows = [
        _funnel_row(name, members, ladder, span)
        for name, members in sorted(groups.items(), key=lambda item: (item[0] != TOTAL, item[0]))
    ] or [_funnel_row(TOTAL, [], ladder, span)]
    if compare:
        rows.append({**_funnel_row("Compare", compared, ladder, compare), "type": "compare"})
    return rows


def _funnel_row(name: str, members: list[tuple[int, set[int]]], ladder: list[int], span: Periods) -> dict[str, Any]:
    counts = [sum(1 for _, steps in members if rung in steps) for rung in ladder]
    values = []
    for position, (rung, count) in enumerate(zip(ladder, counts, strict=True)):
        following = counts[position + 1] if position + 1 < len(counts) else count
        by_period = [0 for _ in span.labels]
        for index, steps in members:
            by_period[index] += rung in steps
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
                    {"date": label.isoformat(), "value": n} for label, n in zip(span.labels, by_period, strict=True)
                ],
            }
        )
    return {"title": name, "type": "total" if name == TOTAL else "segment", "values": values}
