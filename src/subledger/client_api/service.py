"""Export Analytics API use cases: read the app's users and production ledger once, keep what the
filters let through, and compute the operation's answer (JSON) or its rows (CSV)."""

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from subledger.catalog import service as catalog_service
from subledger.client_api import charts, cohorts, journeys, repository
from subledger.client_api.facts import Accounting, Sale, User, admits, sales, user
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

# Each operation's answer, and its rows when it is asked for as CSV (with their columns).
Table = tuple[list[dict[str, Any]], list[str]]


@dataclass
class Facts:
    """What the request's filters let through: users, and sales (with their users)."""

    users: list[User]
    sales: list[Sale]
    earliest: date | None  # the day of the first sale or install, in the caller's zone
    now: datetime
    span: Periods
    compare: Periods | None


def _facts(rt: Runtime, app_id: UUID, body: MetricsRequest, zone: ZoneInfo) -> Facts:
    span = periods(body.period_unit, body.filters.date, zone)
    compare = body.filters.compare_date
    compare_span = periods(body.period_unit, compare, zone, "filters.compare_date") if compare else None
    with rt.db.lagging_read() as conn:
        user_rows = repository.users(conn, app_id)
        sale_rows = repository.production_sales(conn, app_id)
        small_business, tax_rate = events_repository.app_revenue_settings(conn, app_id)
        books = Accounting(catalog_service.rates(conn, app_id), small_business, tax_rate)
        catalog = catalog_service.catalog(conn, app_id)
    everyone = {row["id"]: user(row) for row in user_rows}
    every_sale = sales(everyone, sale_rows, catalog, books)
    chosen = body.filters.chosen()
    kept_sales = [sale for sale in every_sale if admits(sale.values, chosen)]
    for person in everyone.values():  # a user's journey and cohorts count only the sales the filters keep
        person.sales = [sale for sale in person.sales if admits(sale.values, chosen)]
    # A user is kept by their profile's own values, or by a sale kept (the store and country of a
    # profile the server-side API created are those of its purchases).
    kept_users = [person for person in everyone.values() if person.sales or admits(person.values, chosen)]
    moments = [person.installed_at for person in kept_users] + [sale.purchased_at for sale in kept_sales]
    earliest = min(moments).astimezone(zone).date() if moments else None
    return Facts(kept_users, kept_sales, earliest, rt.clock.now(), span, compare_span)


def analytics(rt: Runtime, app_id: UUID, body: AnalyticsIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    facts = _facts(rt, app_id, body, zone)
    by_install = body.date_type == "profile_install_date"
    asked = charts.Question(facts.sales, facts.users, facts.span, body.segmentation, by_install, facts.now)
    series, values = charts.chart(body.chart_id, asked)
    compared = charts.chart(body.chart_id, replace(asked, span=facts.compare, segment=None)) if facts.compare else None
    data = {
        account or body.chart_id: charts.metric_data(body.chart_id, account, series, values, compared)
        for account in charts.accounts_of(body.chart_id)
    }
    rows: list[dict[str, Any]] = []
    for key, metric in data.items():
        for row in metric["data"]:
            rows.extend({"metric": key, "segment": row["title"], **point} for point in row["values"])
    return {"data": data}, (rows, ["metric", "segment", "date", "value"])


def cohort(rt: Runtime, app_id: UUID, body: CohortIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    facts = _facts(rt, app_id, body, zone)
    groups = cohorts.grouped(cohorts.installed(facts.users, None), facts.span, False, facts.compare)
    data = cohorts.cohort_table(groups, body.period_type, body.renewal_days, body.prediction_months, facts.now)
    rows = [
        {"segment_start_date": row["segment_start_date"], "title": row["title"], **value}
        for row in data
        for value in row["values"]
    ]
    columns = ["segment_start_date", "title", *(data[0]["values"][0] if data and data[0]["values"] else [])]
    return {"data": data}, (rows, columns)


def ltv(rt: Runtime, app_id: UUID, body: LtvIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    facts = _facts(rt, app_id, body, zone)
    members = cohorts.paying(facts.users, body.segmentation)
    groups = cohorts.grouped(members, facts.span, body.segmentation is not None, facts.compare)
    data = cohorts.ltv(groups, body.period_type, facts.now)
    rows = [
        {"metric": account, "title": row["title"], "cohort_size": row["cohort_size"], **value}
        for account, metric in data.items()
        for row in metric["data"]
        for value in row["values"]
    ]
    return data, (rows, ["metric", "title", "cohort_size", "period", "value"])


def retention(rt: Runtime, app_id: UUID, body: RetentionIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    facts = _facts(rt, app_id, body, zone)
    members = cohorts.starting(facts.users, body.use_trial, body.segmentation)
    groups = cohorts.grouped(members, facts.span, body.segmentation is not None, facts.compare)
    data = cohorts.retention(groups, body.use_trial)
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
    facts = _facts(rt, app_id, body, zone)
    by_install = body.date_type == "profile_install_date"
    answer = journeys.conversion(
        facts.users,
        start,
        end,
        facts.span,
        facts.compare,
        body.segmentation,
        by_install,
        body.period_unit,
        facts.earliest,
    )
    rows = [{"segment": row["title"], **value} for row in answer["data"] for value in row["values"]]
    return answer, (rows, ["segment", "date", "value", "value_from", "value_to"])


def funnel(rt: Runtime, app_id: UUID, body: FunnelIn, zone: ZoneInfo) -> tuple[dict[str, Any], Table]:
    facts = _facts(rt, app_id, body, zone)
    data = journeys.funnel(facts.users, facts.span, facts.compare, body.segmentation)
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
