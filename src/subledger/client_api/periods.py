"""Periods in the caller's time zone: the days, weeks (from Monday), months, quarters and years a
window of local days falls into, each as the UTC instants it runs between."""

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from subledger.core.errors import bad_request

MAX_PERIODS = 1000
_STEP = {
    "day": relativedelta(days=1),
    "week": relativedelta(weeks=1),
    "month": relativedelta(months=1),
    "quarter": relativedelta(months=3),
    "year": relativedelta(years=1),
}


def period_start(unit: str, day: date) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    return day


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """When ``day`` begins in ``zone``, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Periods:
    """A window's periods: each labelled by its first local day (the window's first day for a
    period that began before it), from ``starts[i]`` to ``starts[i + 1]``; ``starts[-1]`` is the
    end of the window's last day."""

    labels: list[date]
    starts: list[datetime]
    last: date  # the window's last day

    @property
    def begin(self) -> datetime:
        return self.starts[0]

    @property
    def end(self) -> datetime:
        return self.starts[-1]

    def index(self, moment: datetime) -> int | None:
        """The period ``moment`` falls in, None outside the window."""
        if not self.begin <= moment < self.end:
            return None
        return bisect_right(self.starts, moment) - 1

    def ends(self, now: datetime) -> list[datetime]:
        """Each period's end, or now for the period under way (levels are read there)."""
        return [min(end, now) for end in self.starts[1:]]


def periods(unit: str, window: list[date], zone: ZoneInfo, source: str = "filters.date") -> Periods:
    """The periods of ``unit`` that hold the window's days (first and last day included)."""
    first, last = window[0], window[-1]
    labels = [first]
    start = period_start(unit, first) + _STEP[unit]
    while start <= last:
        labels.append(start)
        if len(labels) > MAX_PERIODS:
            raise bad_request("value_error", source, f"At most {MAX_PERIODS} periods at a time: choose a longer one.")
        start += _STEP[unit]
    return Periods(labels, [midnight(day, zone) for day in labels] + [midnight(last + timedelta(days=1), zone)], last)
