"""Export Analytics API use cases: read the app's users and production ledger a page of users at
a time, keep what the filters let through, add each page into the operation's sums, and make the
answer (JSON) or its rows (CSV) from them. Memory holds one page and the sums, whatever the size
of the app."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from subledger.catalog import service as catalog_service
from subledger.client_api import charts, cohorts, journeys, repository
from subledger.client_api.facts import Accounting, Sale, User, add_sales, admits, user
from subledger.client_api.periods import Periods, periods
from subledger.client_api.schemas import (
    AnalyticsIn,
    CohortIn,
    ConversionIn,
    FunnelIn,
    LtvIn,
    MetricsRequest,
    RetentionIn,
)
from subledger.core.runtime import Runtime
from subledger.events import repository as events_repository

PAGE = 2000  # users read at a time
# Each operation's answer, and its rows when it is asked for as CSV (with their columns).
Table = tuple[list[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Window:
    """What a request asks about: its periods, its comparison's, and now."""

    span: Periods
    compare: Periods | None
    now: datetime


@dataclass
class Page:
    """A page of users the filters keep, and their sales the filters keep."""

    users: list[User]
    sales: list[Sale]


def _window(rt: Runtime, body: MetricsRequest, zone: ZoneInfo) -> Window:
    span = periods(body.period_unit, body.filters.date, zone)
    compare = body.filters.compare_date
    return Window(span, periods(body.period_unit, compare, zone, "filters.compare_date") if compare else None,
                  rt.clock.now())  # fmt: skip


def _pages(rt: Runtime, app_id: UUID, body: MetricsRequest) -> Iterator[Page]:
    """The app's users and production sales a page at a time, as the filters keep them, all read in
    one transaction (from the replica, when there is one). A page holds until the next is read."""
    chosen = body.filters.chosen()
    with rt.db.lagging_read() as conn:
        small_business, tax_rate = events_repository.app_revenue_settings(conn, app_id)
        books = Accounting(catalog_service.rates(conn, app_id), small_business, tax_rate)
        catalog = catalog_service.catalog(conn, app_id)
        after = None
        while user_rows := repository.users_page(conn, app_id, after, PAGE):
            after = user_rows[-1]["id"]
            everyone = {row["id"]: user(row) for row in user_rows}
            add_sales(everyone, repository.production_sales(conn, list(everyone)), catalog, books)
            for person in everyone.values():  # a user's journey and cohorts count the sales the filters keep
                person.sales = [sale for sale in person.sales if admits(sale.values, chosen)]
            # A user is kept by their profile's own values, or by a sale kept (the store and country of a
            # profile the server-side API created are those of its purchases).
            kept = [person for person in everyone.values() if person.sales or admits(person.values, chosen)]
            yield Page(kept, [sale for person in kept for sale in person.sales])
            # A user and their sales refer to each other. Parted, a counted page is freed at once
            # rather than by the cyclic garbage collector, which took a fifth of the time.
            for person in everyone.values():
                person.sales = []


def analytics(rt: Runtime, app_id: UUID, body: AnalyticsIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    window = _window(rt, body, zone)
    by_install = body.date_type == "profile_install_date"
    asked = charts.Question([], [], window.span, body.segmentation, by_install, window.now)
    compare = replace(asked, span=window.compare, segment=None) if window.compare else None
    summed = charts.tally(body.chart_id, asked)  # of no one yet: nothing in any period
    compared = charts.tally(body.chart_id, compare) if compare else None
    for page in _pages(rt, app_id, body):
        summed += charts.tally(body.chart_id, replace(asked, sales=page.sales, users=page.users))
        if compare and compared:
            compared += charts.tally(body.chart_id, replace(compare, sales=page.sales, users=page.users))
    series, values = charts.chart(body.chart_id, summed, asked)
    compare_chart = charts.chart(body.chart_id, compared, compare) if compare and compared else None
    data = {
        account or body.chart_id: charts.metric_data(body.chart_id, account, series, values, compare_chart)
        for account in charts.accounts_of(body.chart_id)
    }
    rows: list[dict[str, Any]] = []
    for key, metric in data.items():
        for row in metric["data"]:
            rows.extend({"metric": key, "segment": row["title"], **point} for point in row["values"])
    return {"data": data}, (rows, ["metric", "segment", "date", "value"])


def _grouped(window: Window, by_segment: bool, make: type) -> cohorts.Grouped:
    return cohorts.Grouped(window.span, by_segment, window.compare, make)


def cohort(rt: Runtime, app_id: UUID, body: CohortIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    window = _window(rt, body, zone)
    grouped = _grouped(window, False, cohorts.TableSums)
    for page in _pages(rt, app_id, body):
        cohorts.add_to_table(grouped, page.users, body.period_type, body.renewal_days, window.now)
    data = cohorts.cohort_table(grouped, body.period_type, body.renewal_days, body.prediction_months)
    rows = [
        {"segment_start_date": row["segment_start_date"], "title": row["title"], **value}
        for row in data
        for value in row["values"]
    ]
    columns = ["segment_start_date", "title", *(data[0]["values"][0] if data[0]["values"] else [])]
    return {"data": data}, (rows, columns)


def ltv(rt: Runtime, app_id: UUID, body: LtvIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    window = _window(rt, body, zone)
    grouped = _grouped(window, body.segmentation is not None, cohorts.LtvSums)
    for page in _pages(rt, app_id, body):
        cohorts.add_to_ltv(grouped, page.users, body.segmentation, body.period_type)
    data = cohorts.ltv(grouped, body.period_type)
    rows = [
        {"metric": account, "title": row["title"], "cohort_size": row["cohort_size"], **value}
        for account, metric in data.items()
        for row in metric["data"]
        for value in row["values"]
    ]
    return data, (rows, ["metric", "title", "cohort_size", "period", "value"])


def retention(rt: Runtime, app_id: UUID, body: RetentionIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    window = _window(rt, body, zone)
    grouped = _grouped(window, body.segmentation is not None, Counter)
    for page in _pages(rt, app_id, body):
        cohorts.add_to_retention(grouped, page.users, body.use_trial, body.segmentation)
    data = cohorts.retention(grouped, body.use_trial)
    answer = {
        "data": data,
        "title": "Subscription retention",
        "metric_name": "Subscription retention",
        "description": "Absolute value is the number of subscriptions that reached each step: a trial, the "
        "first payment, each renewal. Relative is their share of those at the first step"
        + (", the trial." if body.use_trial else ", the first payment."),
        "value_type": None,
    }
    rows = [{"title": row["title"], **value} for row in data for value in row["values"]]
    return answer, (rows, ["title", "period", "value", "value_relative"])


def conversion(rt: Runtime, app_id: UUID, body: ConversionIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    start, end = journeys.step(body.from_period, "from_period"), journeys.step(body.to_period, "to_period")
    journeys.check_order(start, end)
    window = _window(rt, body, zone)
    sums = journeys.ConversionSums(start, end, window.span, window.compare)
    earliest: datetime | None = None  # the first install or sale: where data begins
    for page in _pages(rt, app_id, body):
        journeys.add_to_conversion(sums, page.users, body.segmentation, body.date_type == "profile_install_date")
        moments = [person.installed_at for person in page.users] + [sale.purchased_at for sale in page.sales]
        earliest = min([*moments, *([earliest] if earliest else [])], default=None)
    first_day: date | None = earliest.astimezone(zone).date() if earliest else None
    answer = journeys.conversion(sums, body.period_unit, first_day)
    rows = [{"segment": row["title"], **value} for row in answer["data"] for value in row["values"]]
    return answer, (rows, ["segment", "date", "value", "value_from", "value_to"])


def funnel(rt: Runtime, app_id: UUID, body: FunnelIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    window = _window(rt, body, zone)
    sums = journeys.FunnelSums(window.span, window.compare)
    for page in _pages(rt, app_id, body):
        journeys.add_to_funnel(sums, page.users, body.segmentation)
    data = journeys.funnel(sums)
    shown = {"absolute": ["value"], "relative": ["value_relative"], "both": ["value", "value_relative"]}
    columns = ["segment", "period", "step", *shown[body.show_value_as], "drop_off"]
    rows = [
        {
            "segment": row["title"],
            "period": value["period"],
            "step": value["title"],
            "value": value["value"],
            "value_relative": value["value_relative"],
            "drop_off": value["following_changes"]["value"],
        }
        for row in data
        for value in row["values"]
    ]
    return {"data": data}, (rows, columns)


def journeys_of(
    rt: Runtime, app_id: UUID, body: MetricsRequest, zone: ZoneInfo, conversions: list[tuple[str | None, str]]
) -> dict[str, Any]:
    """The funnel, subscription retention, realised LTV (revenue) and ``conversions`` (from one
    state to another) of one window, totals only, from one reading of the ledger."""
    steps = [(journeys.step(start, "from_period"), journeys.step(end, "to_period")) for start, end in conversions]
    for start, end in steps:
        journeys.check_order(start, end)
    window = _window(rt, body, zone)
    funnel_sums = journeys.FunnelSums(window.span, None)
    retained = cohorts.Grouped(window.span, False, None, Counter)
    paying = cohorts.Grouped(window.span, False, None, cohorts.LtvSums)
    converting = [journeys.ConversionSums(start, end, window.span, None) for start, end in steps]
    for page in _pages(rt, app_id, body):
        journeys.add_to_funnel(funnel_sums, page.users, None)
        cohorts.add_to_retention(retained, page.users, False, None)
        cohorts.add_to_ltv(paying, page.users, None, "renewals")
        for sums in converting:
            journeys.add_to_conversion(sums, page.users, None, False)
    return {
        "funnel": journeys.funnel(funnel_sums)[0]["values"],
        "retention": cohorts.retention(retained, False)[0]["values"],
        "ltv": cohorts.ltv(paying, "renewals")["revenue"]["data"][0],
        "conversions": [journeys.conversion(sums, body.period_unit, None) for sums in converting],
    }
