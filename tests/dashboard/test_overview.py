"""The overview's round axis values, shaded cohorts, first-run help and CSV download."""

import csv
import io

import pytest
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.metrics import subscription

from subledger.dashboard import charts
from subledger.dashboard import service as dashboard_service


@pytest.fixture
def operator(runtime, client):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)


@pytest.mark.parametrize(
    ("low", "high", "marks"),
    [
        (0, 1, [0, 0.5, 1]),
        (0, 9.99, [0, 5, 10]),
        (0, 1234, [0, 500, 1000, 1500]),
        (-3.5, 17, [-10, 0, 10, 20]),
        (0, 7, [0, 2, 4, 6, 8]),
        (0, 5_000_000, [0, 2_000_000, 4_000_000, 6_000_000]),
    ],
)
def test_the_axis_marks_round_values_around_the_data(low, high, marks):
    assert charts.axis(low, high) == pytest.approx(marks)


def test_a_chart_draws_its_axis_at_round_values():
    svg = charts.line_chart("MRR", ["01", "02", "03"], [120.0, 980.5, 1234.0]).svg
    assert [tick for tick in ("0", "500", "1000", "1500") if f">{tick}</text>" in svg] == ["0", "500", "1000", "1500"]


def test_an_app_without_purchases_is_told_how_to_send_the_first(api, client, operator):
    page = client.get(f"/dashboard/apps/{api.app_id}/").text
    assert "No purchase recorded yet" in page and "/purchase/set/transaction/" in page
    api.product("monthly", "premium", "P1M")
    api.create("alice")
    assert api.set_transaction("alice", **subscription("t1", "o1", "2025-01-02", "2025-02-02", 9.99)).status_code == 200
    assert "No purchase recorded yet" not in client.get(f"/dashboard/apps/{api.app_id}/").text


def test_the_table_downloads_as_csv_and_cohorts_are_shaded(api, client, operator, clock):
    api.product("monthly", "premium", "P1M")
    api.create("alice")
    api.set_transaction("alice", **subscription("t1", "o1", "2025-01-02", "2025-02-02", 9.99))
    query = {"period": "day", "start": "2025-01-01", "end": "2025-01-09"}
    page = client.get(f"/dashboard/apps/{api.app_id}/", params=query).text
    assert f'href="/dashboard/apps/{api.app_id}/metrics.csv?period=day&amp;start=2025-01-01&amp;end=2025-01-09"' in page
    assert 'class="heat-10">100%</td>' in page  # the January cohort, all still paying

    download = client.get(f"/dashboard/apps/{api.app_id}/metrics.csv", params=query)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="metrics-2025-01-01-2025-01-09-by-day.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["date"] for row in rows] == [f"2025-01-0{day}" for day in range(1, 10)]
    assert rows[1]["gross_usd"] == "9.99" and rows[1]["new_subscriptions"] == "1"


def test_the_csv_needs_a_signed_in_operator(api, client):
    answer = client.get(f"/dashboard/apps/{api.app_id}/metrics.csv", follow_redirects=False)
    assert answer.status_code == 303
