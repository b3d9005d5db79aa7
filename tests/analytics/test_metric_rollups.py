"""The metric rollups that writes keep equal a rebuild from the ledger, and the current day
moves between midnight and now without a write."""

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa
from alembic import command
from support.metrics import metrics, renewal_body
from support.serving import operator_env, run

from subledger.core.addressing import ProfileRef
from subledger.core.dates import format_datetime, parse_datetime
from subledger.core.tables import metric_coverage, metric_days, metric_payers
from subledger.metrics import repository, upkeep
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn


def _rollups(runtime, app_id: UUID, after: datetime) -> tuple:
    """The rollups' rows that count, their shards summed, and the coverage a query could still read."""
    with runtime.db.read() as conn:
        coverage = sa.select(*[c for c in metric_coverage.c if c.name != "id"]).where(
            sa.or_(metric_coverage.c.ends_at.is_(None), metric_coverage.c.ends_at > after)
        )
        return repository.rollup_rows(conn, app_id), {tuple(row) for row in conn.execute(coverage)}


def test_rollups_kept_by_writes_equal_a_rebuild(api, runtime, clock):
    """Renewals (some bought early), upgrades, trials, refunds sent later, one-time purchases,
    several currencies and countries, a product configured after it was sold, deleted profiles."""
    api.product("monthly", "premium", "P1M")
    api.product("yearly", "premium", "P1Y")
    pick = random.Random(7)
    clock.current = datetime(2025, 1, 1, 9, tzinfo=UTC)
    chains: dict[str, list[dict]] = {}
    sold = []
    created = set()
    for step in range(160):
        clock.advance(hours=pick.randint(1, 30))
        user = f"u{pick.randrange(12)}"
        roll = pick.random()
        if roll < 0.6:
            history = chains.setdefault(user, [])
            last = history[-1] if history else None
            product = pick.choice(["monthly", "monthly", "yearly", "weekly"])
            days = {"monthly": 30, "yearly": 365, "weekly": 7}[product]
            trial = last is None and pick.random() < 0.3
            if last is None:
                bought = clock.now() - timedelta(hours=pick.randint(0, 48))
            else:  # on time, early (the new one takes over), or after a gap
                bought = parse_datetime(last["expires_at"]) + timedelta(days=pick.choice([0, 0, -3, 5]))
            body = renewal_body(
                f"{user}-chain",
                f"{user}-{step}",
                product,
                bought,
                7 if trial else days,
                0 if trial else pick.choice([9.99, 4.5, 30]),
                country=pick.choice(["US", "FR", "DE"]),
                currency=pick.choice(["USD", "EUR"]),
                environment="Sandbox" if pick.random() < 0.1 else "Production",
                originally=history[0]["purchased_at"] if history else format_datetime(bought),
                **({"offer": {"category": "introductory", "type": "free_trial"}} if trial else {}),
            )
            history.append(body)
            sold.append((user, body))
        elif roll < 0.75 and sold:
            user, body = pick.choice(sold)
            if "refunded_at" not in body:
                refunded = max(clock.now(), parse_datetime(body["purchased_at"]))
                body.update(refunded_at=format_datetime(refunded), cancellation_reason="refund")
        elif roll < 0.85:
            body = renewal_body(f"{user}-pack-{step}", f"{user}-pack-{step}", "coins", clock.now(), 0, 2.99)
            body.update(purchase_type="one_time_purchase")
            del body["expires_at"], body["renew_status"], body["originally_purchased_at"]
        elif roll < 0.9 and user in chains:
            assert api.delete(user).status_code == 204
            del chains[user]
            created.discard(user)
            sold = [(owner, body) for owner, body in sold if owner != user]
            continue
        else:
            continue
        if user not in created:
            assert api.create(user).status_code == 200
            created.add(user)
        response = api.set_transaction(user, **body)
        assert response.status_code == 200, response.text
        if step == 100:
            api.product("weekly", "premium", "P1W")  # sold before it was configured: its MRR moves

    queries = [
        {"period": "day", "start": "2025-01-01", "end": "2025-09-30"},
        {"period": "week", "start": "2025-01-01", "end": "2025-09-30", "environment": "all"},
        {"period": "month", "start": "2025-01-01", "end": "2025-12-31", "country": "FR"},
        {"period": "month", "start": "2025-01-01", "end": "2025-12-31", "product": "weekly"},
    ]
    kept = [metrics(api, **query) for query in queries]
    assert sum(row["gross_usd"] for row in kept[0]["data"]) > 0 and kept[2]["cohorts"]
    app_id = UUID(api.app_id)
    rollups = _rollups(runtime, app_id, clock.now() - timedelta(days=1))
    assert all(rollups[0]) and rollups[1]

    assert upkeep.matches_ledger(runtime, app_id)
    upkeep.rebuild(runtime, app_id)
    assert _rollups(runtime, app_id, clock.now() - timedelta(days=1)) == rollups
    assert [metrics(api, **query) for query in queries] == kept


def test_verify_finds_rollups_that_drifted_from_the_ledger(api, runtime, clock):
    api.product("monthly", "premium", "P1M")
    api.create("a")
    assert api.set_transaction("a", **renewal_body("a", "a1", "monthly", clock.now(), 30, 10)).status_code == 200
    app_id = UUID(api.app_id)
    for tamper in (
        sa.update(metric_days).values(gross=metric_days.c.gross + 1),
        sa.delete(metric_payers).where(metric_payers.c.period == "week", metric_payers.c.country == "*"),
        sa.delete(metric_coverage),
    ):
        assert upkeep.matches_ledger(runtime, app_id)
        with runtime.db.write() as conn:
            conn.execute(tamper)
        assert not upkeep.matches_ledger(runtime, app_id)
        upkeep.rebuild(runtime, app_id)


def test_the_current_day_moves_between_midnight_and_now(api, clock):
    api.product("monthly", "premium", "P1M")
    noon = datetime(2025, 3, 15, 12, tzinfo=UTC)
    clock.current = noon
    sold = {
        "x": datetime(2025, 2, 13, 10, tzinfo=UTC),  # runs out today at 10:00, before noon
        "y": datetime(2025, 2, 13, 18, tzinfo=UTC),  # runs out today at 18:00
        "z": datetime(2025, 3, 15, 11, tzinfo=UTC),  # bought this morning
    }
    for user, bought in sold.items():
        api.create(user)
        assert api.set_transaction(
            user, **renewal_body(user, user, "monthly", bought, 30, 10, renew_status=False)
        ).is_success

    def today(**query) -> dict:
        return metrics(api, period="day", start="2025-03-14", end="2025-03-15", **query)["data"]

    yesterday, now = today()
    assert (yesterday["active_subscriptions"], yesterday["churned_subscriptions"]) == (2, 0)
    assert (now["active_subscriptions"], now["mrr_usd"], now["churned_subscriptions"]) == (2, 20.0, 1)  # y and z
    assert now["churn_rate"] == 0.5
    clock.current = noon.replace(hour=19)  # y ran out at 18:00: no write, yet the day moved
    assert (today()[1]["active_subscriptions"], today()[1]["churned_subscriptions"]) == (1, 2)
    assert today(country="FR")[1]["active_subscriptions"] == 0
    clock.current = noon + timedelta(days=1)
    assert (today()[1]["active_subscriptions"], today()[1]["churned_subscriptions"]) == (1, 2)


@pytest.mark.slow  # runs the command line in processes
def test_an_upgrade_rebuilds_the_metrics_and_new_rates_move_them(api, runtime, database_url, tmp_path, clock):
    """The migration that adds the rollups marks every app; `subledger migrate` rebuilds them
    (metrics answer 503 meanwhile). Loading exchange rates moves them to the new rates."""
    api.product("monthly", "premium", "P1M")
    bought = datetime(2025, 1, 5, tzinfo=UTC)
    body = renewal_body("a", "a1", "monthly", bought, 30, 10, currency="EUR", country="FR")
    api.create("a")
    assert api.set_transaction("a", **body).status_code == 200
    query = {"period": "month", "start": "2025-01-01", "end": "2025-01-31"}
    before = metrics(api, **query)
    assert before["data"][0]["gross_usd"] > 0

    with runtime.db.migrating() as conn:
        command.downgrade(runtime.db.alembic_config(conn), "0009")
    with runtime.db.migrating() as conn:
        command.upgrade(runtime.db.alembic_config(conn), "head")
    waiting = api.admin("GET", "/metrics/?period=month&start=2025-01-01&end=2025-01-31")
    assert waiting.status_code == 503 and waiting.json()["error_code"] == "metrics_rebuilding"
    assert waiting.headers["Retry-After"] == "30"
    env = operator_env(tmp_path, database_url)
    assert "rebuilding the metrics of app" in run(env, "migrate").stderr
    assert metrics(api, **query) == before

    rates = tmp_path / "rates.csv"
    rates.write_text("currency,usd_per_unit,as_of\nEUR,2.00,2025-06-01\n")
    run(env, "rates", "load", str(rates))
    assert metrics(api, **query)["data"][0]["gross_usd"] == 20.0  # 10 EUR at 2 USD


def test_concurrent_writers_of_many_profiles_keep_the_rollups_exact(api, runtime, clock):
    """Writers of different profiles add to the same rollup rows (same day, product, country) at
    once: none waits for ever, none is lost."""
    api.product("monthly", "premium", "P1M")
    users = [f"c{n}" for n in range(24)]
    for user in users:
        assert api.create(user).status_code == 200
    app_id = UUID(api.app_id)

    def buy(user: str) -> None:
        for month in range(3):
            bought = clock.now() + timedelta(days=30 * month)
            body = renewal_body(
                user, f"{user}-{month}", "monthly", bought, 30, 9.99, originally=format_datetime(clock.now())
            )
            ref = ProfileRef(customer_user_id=user)
            purchases_service.set_transaction(runtime, app_id, ref, TransactionIn.model_validate(body))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(buy, users))
    assert upkeep.matches_ledger(runtime, app_id)
    first_month = metrics(api, period="month", start="2025-01-01", end="2025-01-31")["data"][0]
    assert (first_month["gross_usd"], first_month["new_subscriptions"]) == (round(24 * 9.99, 2), 24)
