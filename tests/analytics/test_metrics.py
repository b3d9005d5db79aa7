"""Metrics against a small ledger computed by hand (the numbers in the comments)."""

import csv
import io

import pytest
from support.metrics import metrics
from support.serving import operator_env, run


def test_monthly_metrics_match_the_hand_computed_ledger(ledger):
    result = metrics(ledger, period="month", start="2025-01-01", end="2025-03-31")
    january, february, march = result["data"]
    assert january == {
        "date": "2025-01-01",
        "gross_usd": 140.0,  # a1 10 + b2 10 + c1 120
        "refunds_usd": 0.0,
        "net_usd": 140.0,
        "mrr_usd": 30.0,  # a1 10 + b2 10 + c1 120/12 (c1 is refunded only at Feb 1)
        "arr_usd": 360.0,
        "active_subscriptions": 3,
        "active_trials": 0,  # b's trial ended Jan 17
        "new_subscriptions": 3,
        "new_trials": 1,
        "trial_conversions": 1,
        "trial_to_paid": 1.0,
        "churned_subscriptions": 0,
        "churn_rate": None,  # nobody was active on Jan 1
        "refund_rate": 0.0,
        "arpu_usd": 46.67,  # 140 / 3 profiles
        "arppu_usd": 46.67,  # 140 / 3 payers
    }
    assert february == {
        "date": "2025-02-01",
        "gross_usd": 10.0,  # a2 (e's Sandbox purchase is left out)
        "refunds_usd": 120.0,  # c1
        "net_usd": -110.0,
        "mrr_usd": 10.0,  # a2 only at the end of February
        "arr_usd": 120.0,
        "active_subscriptions": 1,
        "active_trials": 0,
        "new_subscriptions": 0,
        "new_trials": 1,  # d
        "trial_conversions": 0,
        "trial_to_paid": 0.0,
        "churned_subscriptions": 2,  # b ended Feb 17, c was refunded Feb 1
        "churn_rate": 0.6667,  # 2 of the 3 active on Feb 1
        "refund_rate": 1.0,  # one refunded, one bought
        "arpu_usd": -22.0,  # -110 / 5 profiles
        "arppu_usd": -110.0,  # -110 / a
    }
    assert march["gross_usd"] == 10.0 and march["active_subscriptions"] == 1 and march["mrr_usd"] == 10.0
    assert march["churned_subscriptions"] == 0  # a runs to Apr 5, after now
    assert march["churn_rate"] == 0.0 and march["trial_to_paid"] is None
    assert march["arpu_usd"] == 2.0 and march["arppu_usd"] == 10.0
    assert result["cohorts"] == [
        # a and b first paid in January (c's only payment was refunded): both in Feb, a in March.
        # Nobody first paid in February or March.
        {"cohort": "2025-01", "subscriptions": 2, "retention": [1.0, 1.0, 0.5]},
    ]


def test_filters_and_environment(ledger):
    yearly = metrics(ledger, period="month", start="2025-01-01", end="2025-02-28", product="yearly")["data"]
    assert [row["gross_usd"] for row in yearly] == [120.0, 0.0]
    assert [row["refunds_usd"] for row in yearly] == [0.0, 120.0]
    sandbox = metrics(ledger, period="month", start="2025-02-01", end="2025-02-28", environment="Sandbox")["data"]
    assert sandbox[0]["gross_usd"] == 10.0 and sandbox[0]["new_subscriptions"] == 1
    both = metrics(ledger, period="month", start="2025-02-01", end="2025-02-28", environment="all")["data"]
    assert both[0]["gross_usd"] == 20.0
    nothing = metrics(ledger, period="month", start="2025-01-01", end="2025-01-31", store="play_store")["data"]
    assert nothing[0]["gross_usd"] == 0.0 and nothing[0]["active_subscriptions"] == 0
    assert (
        metrics(ledger, period="month", start="2025-01-01", end="2025-01-31", country="de")["data"][0]["gross_usd"]
        == 0.0
    )


def test_days_and_weeks(ledger):
    days = metrics(ledger, period="day", start="2025-01-16", end="2025-01-18")["data"]
    assert [row["date"] for row in days] == ["2025-01-16", "2025-01-17", "2025-01-18"]
    assert [row["gross_usd"] for row in days] == [0.0, 10.0, 0.0]  # b's first payment
    assert [row["active_trials"] for row in days] == [1, 0, 0]
    weeks = metrics(ledger, period="week", start="2025-01-01", end="2025-01-12")["data"]
    assert [row["date"] for row in weeks] == ["2024-12-30", "2025-01-06"]  # ISO weeks start on Monday
    assert [row["gross_usd"] for row in weeks] == [10.0, 0.0]


def test_bad_queries_get_the_error_body(ledger):
    bad = ("period=year", "start=2025-02-01&end=2025-01-01", "start=yesterday", "period=day&start=2000-01-01")
    out_of_range = ("period=month&start=0001-01-01&end=0002-01-01", "period=day&start=9999-12-30&end=9999-12-31")
    for query in (*bad, *out_of_range, "end=0001-01-01", "period=month&end=0001-01-01"):
        response = ledger.admin("GET", f"/metrics/?{query}")
        assert response.status_code == 400, query
        assert response.json()["status_code"] == 400
    # An end at the very first day there is: the error names it, rather than the default start before it.
    too_early = ledger.admin("GET", "/metrics/?end=0001-01-01").json()
    assert too_early["errors"][0]["source"] == "end"
    first_days = ledger.admin("GET", "/metrics/?end=1970-01-05").json()["data"]
    assert [row["date"] for row in first_days][:2] == ["1970-01-01", "1970-01-02"]


@pytest.mark.slow  # runs the command line in processes
def test_metrics_command_prints_a_table_and_csv(ledger, runtime, database_url, tmp_path):
    env = operator_env(tmp_path, database_url)
    args = ["metrics", "--app", ledger.app_id, "--period", "month", "--start", "2025-01-01", "--end", "2025-01-31"]
    rows = list(csv.reader(io.StringIO(run(env, *args, "--csv").stdout)))
    assert rows[0][:4] == ["date", "gross_usd", "refunds_usd", "net_usd"]
    assert rows[1][:4] == ["2025-01-01", "140.0", "0.0", "140.0"]
    table = run(env, *args).stdout.splitlines()
    assert table[0].split()[:2] == ["date", "gross_usd"] and table[1].split()[:2] == ["2025-01-01", "140.0"]
    cohorts = list(csv.reader(io.StringIO(run(env, *args, "--cohorts", "--csv").stdout)))
    assert cohorts[0][:3] == ["cohort", "subscriptions", "month_0"] and cohorts[1][:3] == ["2025-01", "2", "1.0"]
