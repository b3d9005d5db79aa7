"""The Export Analytics API's metrics (/api/v1/client-api/metrics/*): the document's examples, and
every operation against the small ledger of test_metrics computed by hand, through HTTP on both
engines."""

import csv
import gc
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from support import contract
from support.analytics_contract import EXAMPLES, check
from support.metrics import subscription
from support.web import web

from subledger.client_api import service
from subledger.client_api.facts import Sale, User
from subledger.client_api.schemas import AnalyticsIn, MetricsRequest

METRICS = "/api/v1/client-api/metrics"
Q1 = {"date": ["2025-01-01", "2025-03-31"]}


@pytest.fixture
def ask(clock):
    """POST an operation; a second passes between two calls (the API takes two a second)."""

    def post(api, operation: str, body: dict, **headers):
        clock.current += timedelta(seconds=1)
        return api.client.post(f"{METRICS}/{operation}/", json=body, headers={**api.headers(), **headers})

    return post


def answer(ask, api, operation, body, **headers) -> dict:
    response = ask(api, operation, body, **headers)
    assert response.status_code == 200, response.text
    return response.json()


def chart(ask, api, chart_id, account=None, **body) -> tuple[float, list]:
    """A chart's value over the window and its total by period."""
    got = answer(ask, api, "analytics", {"chart_id": chart_id, "filters": Q1, **body})["data"][account or chart_id]
    return got["value"], [point["value"] for point in got["data"][0]["values"]]


@pytest.mark.parametrize("operation", EXAMPLES)
def test_each_example_of_the_document_answers_as_documented(ledger, ask, operation):  # noqa: F811
    body, schema = EXAMPLES[operation]
    check(schema, answer(ask, ledger, operation, {**body, "format": "json"}))
    # The same over the ledger's months, where there is something to count.
    check(schema, answer(ask, ledger, operation, {**body, "format": "json", "filters": Q1}))
    as_csv = ask(ledger, operation, {**body, "format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows and all(len(row) == len(rows[0]) for row in rows)


def test_revenue_proceeds_and_net_revenue_by_month(ledger, ask):  # noqa: F811
    # Jan: a1 + b2 + c1 = 140; Feb: a2 less c1's refund = -110; Mar: a3 = 10. Commission 30% in
    # a subscription's first year, no tax.
    assert chart(ask, ledger, "revenue", "revenue") == (40.0, [140.0, -110.0, 10.0])
    assert chart(ask, ledger, "revenue", "proceeds") == (28.0, [98.0, -77.0, 7.0])
    assert chart(ask, ledger, "revenue", "net_revenue") == (28.0, [98.0, -77.0, 7.0])
    assert chart(ask, ledger, "refund_money", "revenue") == (120.0, [0.0, 120.0, 0.0])
    assert chart(ask, ledger, "refund_events") == (1, [0, 1, 0])
    assert chart(ask, ledger, "non_subscriptions") == (0, [0, 0, 0])


def test_levels_at_each_months_end_and_now(ledger, ask):  # noqa: F811
    # End of Jan: a1 and b2 ($10 a month each; c1 was refunded at midnight). End of Feb: a2. Now: a3.
    assert chart(ask, ledger, "mrr", "revenue") == (10.0, [20.0, 10.0, 10.0])
    assert chart(ask, ledger, "arr", "revenue") == (120.0, [240.0, 120.0, 120.0])
    assert chart(ask, ledger, "subscriptions_active") == (1, [2, 1, 1])
    # The trials: b1 runs Jan 10-17, d1 Feb 12-19; neither at a month's end.
    assert chart(ask, ledger, "trials_active") == (0, [0, 0, 0])


def test_flows_of_subscriptions_trials_and_users(ledger, ask):  # noqa: F811
    assert chart(ask, ledger, "subscriptions_new") == (3, [3, 0, 0])  # a1, b2 (converted), c1
    assert chart(ask, ledger, "subscriptions_expired") == (2, [0, 2, 0])  # c1 refunded, b2 lapsed
    assert chart(ask, ledger, "trials_new") == (2, [1, 1, 0])
    assert chart(ask, ledger, "trials_expired") == (1, [0, 1, 0])  # d1; b1 converted
    assert chart(ask, ledger, "installs") == (5, [3, 2, 0])
    # ARPU: revenue per user installed by the month's end; ARPPU: per user who paid in the month.
    assert chart(ask, ledger, "arpu", "revenue") == (8.0, [46.67, -22.0, 2.0])
    assert chart(ask, ledger, "arppu", "revenue") == (13.33, [46.67, -110.0, 10.0])


def test_periods_segments_filters_and_the_comparison(ledger, ask):  # noqa: F811
    quarter = answer(ask, ledger, "analytics", {"chart_id": "revenue", "filters": Q1, "period_unit": "quarter"})
    assert quarter["data"]["revenue"]["data"][0]["values"] == [{"date": "2025-01-01", "value": 40.0}]
    split = answer(
        ask, ledger, "analytics", {"chart_id": "revenue", "filters": Q1, "segmentation": "store_product_id"}
    )["data"]["revenue"]["data"]
    assert [(row["title"], row["type"], [p["value"] for p in row["values"]]) for row in split] == [
        ("Total", "total", [140.0, -110.0, 10.0]),
        ("monthly", "segment", [20.0, 10.0, 10.0]),
        ("yearly", "segment", [120.0, -120.0, 0.0]),
    ]
    # Countries in any case; a product filter; a store no sale was made in.
    assert chart(ask, ledger, "revenue", "revenue", filters={**Q1, "country": ["us"]})[0] == 40.0
    assert chart(ask, ledger, "revenue", "revenue", filters={**Q1, "store_product_id": ["yearly"]})[0] == 0.0
    assert chart(ask, ledger, "subscriptions_new", filters={**Q1, "duration": ["monthly"]})[0] == 2
    assert chart(ask, ledger, "revenue", "revenue", filters={**Q1, "store": ["play_store"]})[0] == 0.0
    weekly = answer(
        ask,
        ledger,
        "analytics",
        {
            "chart_id": "trials_new",
            "filters": {**Q1, "compare_date": ["2025-02-10", "2025-02-16"]},
            "period_unit": "week",
        },
    )  # noqa: E501
    got = weekly["data"]["trials_new"]
    assert got["value"] == 2 and (got["compare_value_from"], got["compare_value_to"]) == (1, 1)
    # By install date, each user's revenue counts in the month they were created.
    assert chart(ask, ledger, "revenue", "revenue", date_type="profile_install_date") == (40.0, [40.0, 0.0, 0.0])


def test_days_are_the_callers_in_adapty_tz(api, ask, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = datetime(2025, 3, 1, tzinfo=UTC)
    late = {**subscription("t1", "t1", "2025-01-31", "2025-02-28", 10), "purchased_at": "2025-01-31T23:30:00Z"}
    assert api.create("night_owl").status_code == 200
    assert api.set_transaction("night_owl", **late).status_code == 200
    body = {"chart_id": "revenue", "filters": {"date": ["2025-01-31", "2025-02-01"]}, "period_unit": "day"}
    for zone, by_day in (("UTC", [10.0, 0.0]), ("Europe/Berlin", [0.0, 10.0]), ("Asia/Kolkata", [0.0, 10.0])):
        got = answer(ask, api, "analytics", body, **{"Adapty-Tz": zone})["data"]["revenue"]["data"][0]["values"]
        assert [point["value"] for point in got] == by_day, zone
    assert [p["value"] for p in answer(ask, api, "analytics", body, **{"Adapty-Tz": "America/New_York"})["data"][
        "revenue"]["data"][0]["values"]] == [10.0, 0.0]  # fmt: skip


def test_attribution_filters_and_segments(api, ask, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = datetime(2025, 3, 1, tzinfo=UTC)
    for user, channel in (("ann", "tiktok"), ("bob", "search"), ("cy", None)):
        body = subscription(f"{user}1", f"{user}1", "2025-02-03", "2025-03-03", 10)
        assert api.create(user).status_code == 200
        assert api.set_transaction(user, **body).status_code == 200
        if channel:
            attribution = {"status": "non_organic", "channel": channel, "customer_user_id": user}
            headers = {"Authorization": f"Api-Key {api.public}"}
            added = api.client.post("/api/v2/web-api/attribution/", content=json.dumps(attribution), headers=headers)
            assert added.status_code == 201, added.text
    window = {"date": ["2025-02-01", "2025-02-28"]}
    body = {"chart_id": "revenue", "filters": {**window, "attribution_channel": ["tiktok"]}, "period_unit": "month"}
    assert answer(ask, api, "analytics", body)["data"]["revenue"]["value"] == 10.0
    split = {**body, "filters": window, "segmentation": "attribution_channel"}
    rows = answer(ask, api, "analytics", split)["data"]["revenue"]["data"]
    assert {row["title"]: row["values"][0]["value"] for row in rows} == {
        "Total": 30.0,
        "search": 10.0,
        "tiktok": 10.0,
        "unknown": 10.0,
    }
    sources = {**body, "filters": {**window, "attribution_source": ["custom"], "attribution_status": ["non_organic"]}}
    assert answer(ask, api, "analytics", sources)["data"]["revenue"]["value"] == 20.0


def test_the_cohort_table_by_renewals_and_by_days(ledger, ask):  # noqa: F811
    rows = answer(ask, ledger, "cohort", {"filters": Q1, "period_unit": "quarter"})["data"]
    total = rows[0]
    assert (total["type"], total["total_installs"], total["total_paid_subscribers"]) == ("total", 5, 3)
    assert (total["total_revenue_usd"], total["total_arpu_usd"], total["total_arppu_usd"]) == (40.0, 8.0, 13.33)
    # First payments: a1, b2, c1 (refunded: no revenue); second: a2; third: a3, still running.
    renewals = [
        (v["period"], v["subscriptions"], v["revenue_usd"], v["currently_active_period"]) for v in total["values"]
    ]
    assert renewals == [(1, 3, 20.0, False), (2, 1, 10.0, False), (3, 1, 10.0, True)]
    assert [v["subscriptions_relative"] for v in total["values"]] == [100.0, 33.33, 33.33]
    assert total["predict"]["months"] == 12 and total["predict"]["revenue_usd"] >= 40.0
    by_days = answer(ask, ledger, "cohort", {"filters": Q1, "period_type": "days", "renewal_days": [7, 45]})["data"]
    # By day 7 after install: a1 (Jan 5). By day 45: a1, a2 (Feb 5), b2 (Jan 17), c1 (refunded).
    assert [(v["period"], v["subscriptions"], v["revenue_usd"]) for v in by_days[0]["values"]] == [
        (7, 1, 10.0),
        (45, 4, 30.0),
    ]


def test_ltv_retention_conversion_and_the_funnel(ledger, ask):  # noqa: F811
    ltv = answer(ask, ledger, "ltv", {"filters": Q1, "period_unit": "quarter"})
    total = ltv["revenue"]["data"][0]
    # Three paying users; by the 1st payment 20 kept (c1 refunded), by the 3rd 40.
    assert (total["cohort_size"], total["value"]) == (3, 13.33)
    assert [v["value"] for v in total["values"]] == [6.67, 10.0, 13.33]
    assert ltv["proceeds"]["value"] == 9.33

    trial = answer(ask, ledger, "retention", {"filters": Q1, "use_trial": True})["data"][0]["values"]
    assert [(v["title"], v["value"], v["value_relative"]) for v in trial] == [("Trial", 2, 100.0), ("Paid", 1, 50.0)]
    paid = answer(ask, ledger, "retention", {"filters": Q1})["data"][0]["values"]
    assert [(v["period"], v["value"]) for v in paid] == [(1, 3), (2, 1), (3, 1)]

    converted = answer(ask, ledger, "conversion", {"filters": Q1, "from_period": "trial", "to_period": "1"})
    assert (converted["value"], converted["value_from"], converted["value_to"]) == (50.0, 2, 1)
    assert converted["title"] == "Conversion rate from Trial to Paid"
    installs = answer(ask, ledger, "conversion", {"filters": Q1, "from_period": None, "to_period": "2"})
    assert (installs["value_from"], installs["value_to"]) == (5, 1)
    refused = ask(ledger, "conversion", {"filters": Q1, "from_period": "2", "to_period": "trial"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "to_period"

    steps = answer(ask, ledger, "funnel", {"filters": Q1, "period_unit": "month"})["data"][0]["values"]
    assert [(s["title"], s["value"], s["following_changes"]["value"]) for s in steps] == [
        ("Install", 5, 5),
        ("Paywall displayed", 0, 0),  # more users at the next step: nobody dropped off
        ("Trial", 2, 0),
        ("Paid", 3, 2),
        ("2nd period", 1, 0),
        ("3rd period", 1, 0),
    ]
    assert [point["value"] for point in steps[3]["values"]] == [3, 0, 0]  # all three installed in January


def test_paywall_views_in_the_funnel_and_conversion(shop, ask, clock):  # noqa: F811
    # user123 was installed on Jan 9 (the fixture); saw a paywall on Feb 10 and began a trial the next day.
    clock.current = datetime(2025, 2, 20, tzinfo=UTC)
    visit = {**contract.WEB_VISIT, "variation_id": shop.paywall["variation_id"], "visited_at": "2025-02-10T10:00:00Z"}
    assert web(shop, "/paywall/visit/", visit).status_code == 201
    trial = {"offer": {"category": "introductory", "type": "free_trial"}}
    assert (
        shop.set_transaction("user123", **subscription("t1", "t1", "2025-02-11", "2025-02-18", 0, **trial)).status_code
        == 200
    )  # noqa: E501
    february = {"date": ["2025-02-01", "2025-02-28"]}
    viewed = answer(ask, shop, "conversion", {"filters": february, "from_period": "paywall", "to_period": "trial"})
    assert (viewed["value_from"], viewed["value_to"], viewed["value"]) == (1, 1, 100.0)
    steps = answer(ask, shop, "funnel", {"filters": {"date": ["2025-01-01", "2025-02-28"]}})["data"][0]["values"]
    assert [(step["title"], step["value"]) for step in steps[:3]] == [
        ("Install", 1),
        ("Paywall displayed", 1),
        ("Trial", 1),
    ]


@pytest.mark.parametrize(
    ("operation", "body", "code", "source"),
    [
        ("analytics", {"chart_id": "visits", "filters": Q1}, "invalid_enumeration_member", "chart_id"),
        ("analytics", {"chart_id": "mrr"}, "base_error", "filters"),
        ("analytics", {"chart_id": "mrr", "filters": {"date": ["2025-03-01", "2025-01-01"]}}, "value_error", "filters"),
        ("analytics", {"chart_id": "mrr", "filters": {"date": ["March"]}}, "datetime", "filters.date.0"),
        ("analytics", {"chart_id": "mrr", "filters": Q1, "segmentation": "planet"}, "invalid_enumeration_member",
         "segmentation"),
        ("cohort", {"filters": Q1, "prediction_months": 5}, "invalid_enumeration_member", "prediction_months"),
        ("conversion", {"filters": Q1, "from_period": None, "to_period": "eleventy"}, "invalid_enumeration_member",
         "to_period"),
        ("conversion", {"filters": Q1, "from_period": "²", "to_period": "2"}, "invalid_enumeration_member",
         "from_period"),
        ("funnel", {"filters": {"date": ["1970-01-01", "2999-12-31"]}, "period_unit": "day"}, "value_error",
         "filters.date"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_and_say_where(api, ask, operation, body, code, source):
    refused = ask(api, operation, body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_code"] == code and refused.json()["errors"][0]["source"] == source


def test_one_reading_gives_what_the_operations_give(ledger, ask, runtime):  # noqa: F811
    """The dashboard's Journeys page reads the ledger once for all four analyses."""
    body = {"filters": Q1, "period_unit": "month"}
    together = service.journeys_of(
        runtime, uuid.UUID(ledger.app_id), MetricsRequest.model_validate(body), ZoneInfo("UTC"), [("trial", "1")]
    )
    assert together["funnel"] == answer(ask, ledger, "funnel", body)["data"][0]["values"]
    assert together["retention"] == answer(ask, ledger, "retention", body)["data"][0]["values"]
    assert together["ltv"] == answer(ask, ledger, "ltv", {**body, "period_type": "renewals"})["revenue"]["data"][0]
    alone = answer(ask, ledger, "conversion", {**body, "from_period": "trial", "to_period": "1"})
    assert {key: value for key, value in together["conversions"][0].items() if key != "recommended_period"} == {
        key: value for key, value in alone.items() if key != "recommended_period"
    }


def test_a_counted_page_is_freed_without_the_cyclic_collector(ledger, runtime):  # noqa: F811
    """Users and their sales refer to each other; the memory of an export stays a page's only if
    each page is freed once counted, and the collector's passes over them took a fifth of the time."""
    body = AnalyticsIn.model_validate({"chart_id": "revenue", "filters": Q1, "period_unit": "month"})
    gc.collect()
    gc.disable()
    try:
        answered = service.analytics(runtime, uuid.UUID(ledger.app_id), body, ZoneInfo("UTC"))
        left = [found for found in gc.get_objects() if isinstance(found, User | Sale)]
    finally:
        gc.enable()
    assert answered[0]["data"]["revenue"]["data"][0]["values"][0]["value"] > 0
    assert left == []
