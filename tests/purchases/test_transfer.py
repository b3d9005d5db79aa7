"""`subledger export` and `subledger import`, run as an operator runs them."""

import csv
import io
import json

import pytest
from support.api import new_app
from support.database import db_snapshot
from support.metrics import at, subscription
from support.serving import operator_env, run, run_json

# Each test runs the command line in processes of its own.
pytestmark = pytest.mark.slow


@pytest.fixture
def env(runtime, database_url, tmp_path):
    return operator_env(tmp_path, database_url)


@pytest.fixture
def shop(api):
    api.product("monthly", "premium", "P1M")
    api.create("a", email="a@example.com", ip_v4_address="203.0.113.7", att_status=3)
    api.create("b")
    bodies = [
        ("a", subscription("a1", "a1", "2025-01-05", "2025-02-05", 9.99)),
        (
            "a",
            subscription(
                "a2",
                "a1",
                "2025-02-05",
                "2025-03-05",
                9.99,
                offer={"category": "promotional", "type": "pay_up_front", "id": "p"},
            ),
        ),
        (
            "b",
            {
                "purchase_type": "one_time_purchase",
                "store": "play_store",
                "store_product_id": "coins",
                "store_transaction_id": "GPA.1",
                "store_original_transaction_id": "GPA.1",
                "price": {"country": "DE", "currency": "EUR", "value": 1.19},
                "purchased_at": at("2025-01-07"),
                "refunded_at": at("2025-01-08"),
                "cancellation_reason": "refund",
            },
        ),
    ]
    for user, body in bodies:
        assert api.set_transaction(user, **body).status_code == 200, api.set_transaction(user, **body).text
    return api


def ledger_tables(runtime) -> dict:
    """Every table but profiles (whose updated_at and timestamp move with every recorded call)."""
    return {name: rows for name, rows in db_snapshot(runtime).items() if name != "profiles"}


def ledger_of(api, users=("a", "b")) -> dict:
    """What the profiles show of their purchases (ids that differ between apps left out)."""
    shown = {}
    for user in users:
        profile = api.get(user).json()["data"]
        shown[user] = [
            {key: value for key, value in item.items() if key != "purchase_id"}
            for item in profile["subscriptions"] + profile["non_subscriptions"]
        ] + [profile["total_revenue_usd"]]
    return shown


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_exported_transactions_import_into_another_app_as_they_were(shop, runtime, client, env, tmp_path, file_format):
    path = tmp_path / f"transactions.{file_format}"
    result = run(env, "export", "--app", shop.app_id, "transactions", "--format", file_format, "-o", str(path))
    assert "exporting 3 transactions" in result.stderr
    copy = new_app(runtime, client, "Copy")
    copy.product("monthly", "premium", "P1M")
    imported = run(env, "import", "--app", copy.app_id, str(path))
    assert json.loads(imported.stdout) == {"read": 3, "imported": 3, "changed": 3, "bad": 0}
    assert ledger_of(copy) == ledger_of(shop)
    before, shown = ledger_tables(runtime), ledger_of(copy)
    again = run_json(env, "import", "--app", copy.app_id, str(path))
    assert again == {"read": 3, "imported": 3, "changed": 0, "bad": 0}
    assert ledger_tables(runtime) == before and ledger_of(copy) == shown  # importing again changes nothing


def test_bad_lines_are_reported_by_number_and_none_of_them_is_recorded(shop, runtime, env, tmp_path):
    good = {"customer_user_id": "c", **subscription("c1", "c1", "2025-01-01", "2025-02-01", 5)}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({k: v for k, v in good.items() if k != "customer_user_id"} | {"store_transaction_id": "x"}),
        json.dumps({**good, "store_transaction_id": "c2", "expires_at": at("2024-12-01")}),
        json.dumps({**good, "store_transaction_id": "a1"}),  # belongs to profile a
        "",
        json.dumps({**good, "store_transaction_id": "c3", "price": {"country": "ZZ", "currency": "USD", "value": 1}}),
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run(env, "import", "--app", shop.app_id, str(path), check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"read": 6, "imported": 1, "changed": 1, "bad": 5}
    reported = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("line ")]
    assert reported == ["line 2", "line 3", "line 4", "line 5", "line 7"]
    assert "expires_date_error" in result.stderr and "store_transaction_id_error" in result.stderr
    [chain] = shop.get("c").json()["data"]["subscriptions"]
    assert chain["store_transaction_id"] == "c1"
    assert [s["store_transaction_id"] for s in shop.get("a").json()["data"]["subscriptions"]] == ["a2"]


def test_bad_csv_cells_are_reported(shop, env, tmp_path):
    columns = ["customer_user_id", "purchase_type", "store", "store_product_id", "store_transaction_id"]
    columns += ["store_original_transaction_id", "price_country", "price_currency", "price_value", "purchased_at"]
    columns += ["originally_purchased_at", "expires_at", "renew_status"]
    row = ["d", "subscription", "app_store", "monthly", "d1", "d1", "US", "USD", "5", at("2025-01-01")]
    row += [at("2025-01-01"), at("2025-02-01"), "true"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerow(row)
    writer.writerow([*row[:4], "d2", *row[5:8], "five", *row[9:]])
    writer.writerow([*row[:4], "d3", *row[5:12], "maybe"])
    path = tmp_path / "history.csv"
    path.write_text(out.getvalue())
    result = run(env, "import", "--app", shop.app_id, str(path), check=False)
    assert json.loads(result.stdout) == {"read": 3, "imported": 1, "changed": 1, "bad": 2}
    assert "line 3: price_value" in result.stderr and "line 4: renew_status" in result.stderr


def test_profiles_and_events_export(shop, env, tmp_path):
    profiles_csv = run(env, "export", "--app", shop.app_id, "profiles", "--format", "csv").stdout
    rows = {row["customer_user_id"]: row for row in csv.DictReader(io.StringIO(profiles_csv))}
    assert set(rows) == {"a", "b"} and rows["a"]["email"] == "a@example.com"
    assert (rows["a"]["ip_v4_address"], rows["a"]["att_status"], rows["b"]["att_status"]) == ("203.0.113.7", "3", "")
    assert rows["b"]["total_revenue_usd"] == "0" and rows["a"]["active_access_levels"] in ("", "premium")
    profiles_jsonl = run(env, "export", "--app", shop.app_id, "profiles").stdout.splitlines()
    assert {json.loads(line)["customer_user_id"] for line in profiles_jsonl} == {"a", "b"}
    events = [json.loads(line) for line in run(env, "export", "--app", shop.app_id, "events").stdout.splitlines()]
    assert {"profile_created", "subscription_started"} <= {event["event_type"] for event in events}
    events_csv = list(
        csv.DictReader(io.StringIO(run(env, "export", "--app", shop.app_id, "events", "--format", "csv").stdout))
    )
    assert len(events_csv) == len(events) and json.loads(events_csv[0]["payload"])
