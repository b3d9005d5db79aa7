"""Exchange rates move every USD figure of the ledger: profiles' total revenue and the metrics.
Loading rates, or a release that ships new ones, leaves none of them at the old rates."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from serving import operator_env, run
from test_metric_rollups import _body
from test_metrics import metrics

from subledger.analytics import upkeep
from subledger.catalog import rules as catalog_rules
from subledger.core.addressing import ProfileRef
from subledger.core.tables import profiles
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn

JANUARY = {"period": "month", "start": "2025-01-01", "end": "2025-01-31"}
BOUGHT = datetime(2025, 1, 5, tzinfo=UTC)


def _buy_in_euros(api, user: str, value: float = 10) -> None:
    body = _body(user, f"{user}-1", "monthly", BOUGHT, 30, value, currency="EUR", country="FR")
    assert api.set_transaction(user, **body).status_code == 200


def _total(api, user: str) -> float:
    return api.get(user).json()["data"]["total_revenue_usd"]


def _shop(api) -> None:
    api.access_level("premium")
    api.product("monthly", "premium", "P1M")


def test_loading_rates_reprices_every_profile_and_the_metrics(api, database_url, tmp_path):
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    api.create("dollars")
    assert api.set_transaction("dollars", **_body("d", "d1", "monthly", BOUGHT, 30, 5)).status_code == 200
    env = operator_env(tmp_path, database_url)
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,usd_per_unit,as_of\nEUR,2.00,2025-06-01\n")

    loaded = run(env, "rates", "load", str(rates))
    assert "rebuilding the metrics" in loaded.stderr
    assert (_total(api, "a"), _total(api, "dollars")) == (20.0, 5.0)
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 25.0
    verified = run(env, "verify")
    assert "0 profile(s) differ" in verified.stderr

    again = run(env, "rates", "load", str(rates))  # the same rates: nothing to reprice or rebuild
    assert "rebuilding" not in again.stderr and _total(api, "a") == 20.0


def test_a_release_with_new_shipped_rates_is_repriced_once(api, runtime, monkeypatch):
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    before = _total(api, "a")
    assert purchases_service.reprice(runtime) == 0  # records the rates the ledger is priced at

    shipped = [rate for rate in catalog_rules.default_rates() if rate.currency != "EUR"]
    new_release = (*shipped, catalog_rules.Rate("EUR", Decimal("3"), date(2026, 1, 1)))
    monkeypatch.setattr(catalog_rules, "default_rates", lambda: new_release)
    assert purchases_service.reprice(runtime) == 1
    assert before != 30.0 and _total(api, "a") == 30.0
    waiting = api.admin("GET", "/metrics/?period=month&start=2025-01-01&end=2025-01-31")
    assert waiting.status_code == 503 and waiting.json()["error_code"] == "metrics_rebuilding"
    assert upkeep.rebuild_pending(runtime) == 1
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 30.0
    assert list(purchases_service.verify(runtime)) == []
    assert purchases_service.reprice(runtime) == 0


def test_migrate_reprices_totals_left_at_old_rates_without_rebuilding_the_metrics(api, runtime, database_url, tmp_path):
    """A database upgraded from before the rates were recorded: earlier loads of rates rebuilt the
    metrics but left profiles' totals as they were."""
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    current = _total(api, "a")
    with runtime.db.engine.begin() as conn:
        conn.execute(sa.update(profiles).values(total_revenue_usd=1))
    env = operator_env(tmp_path, database_url)
    assert run(env, "verify", check=False).returncode == 1

    migrated = run(env, "migrate")
    assert "the total revenue of 1 profile(s)" in migrated.stderr and "rebuilding" not in migrated.stderr
    assert _total(api, "a") == current
    assert "0 profile(s) differ" in run(env, "verify").stderr
    assert "repriced" not in run(env, "migrate").stderr


def test_writes_while_rates_load_end_at_the_new_rates(api, runtime):
    """Writers buying in euros while rates load: none stores a total at rates that are no longer in
    force (on PostgreSQL they wait for the load; on SQLite for the one write lock)."""
    _shop(api)
    users = [f"w{n}" for n in range(4)]
    for user in users:
        assert api.create(user).status_code == 200
    app_id = UUID(api.app_id)
    loading, done, failures = threading.Event(), threading.Event(), []

    def buy(user: str) -> None:
        month = 0
        while not done.is_set() or month < 3:
            bought = BOUGHT + timedelta(days=31 * month)
            body = _body(user, f"{user}-{month}", "monthly", bought, 30, 10, currency="EUR", country="FR")
            ref = ProfileRef(customer_user_id=user)
            try:
                purchases_service.set_transaction(runtime, app_id, ref, TransactionIn.model_validate(body))
            except Exception as exc:  # noqa: BLE001 - reported by the test below
                failures.append(exc)
                return
            loading.set()
            month += 1

    writers = [threading.Thread(target=buy, args=(user,)) for user in users]
    for writer in writers:
        writer.start()
    loading.wait(timeout=30)
    for value in ("2", "3", "4"):
        purchases_service.load_rates(runtime, f"currency,usd_per_unit,as_of\nEUR,{value},2025-06-01\n")
    done.set()
    for writer in writers:
        writer.join(timeout=60)
    assert failures == []
    assert list(purchases_service.verify(runtime)) == []
    upkeep.rebuild_pending(runtime)
    assert upkeep.matches_ledger(runtime, app_id)
    assert all(_total(api, user) % 40 == 0 for user in users)  # every month at 10 EUR at 4 USD
