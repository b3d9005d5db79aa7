"""Exchange rates move every USD figure of the ledger: profiles' total revenue and the metrics.
Loading rates, or a release that ships new ones, leaves none of them at the old rates, and
writes go on while the profiles are brought to the new ones."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
import sqlalchemy as sa
from support.api import new_app
from support.metrics import metrics, renewal_body
from support.serving import operator_env, run

from subledger.catalog import rules as catalog_rules
from subledger.core.addressing import ProfileRef
from subledger.core.tables import ledger_pricing, profiles
from subledger.metrics import upkeep
from subledger.purchases import repository as purchases_repository
from subledger.purchases import repricing, verification
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn

# Each test runs the command line in processes of its own.
pytestmark = pytest.mark.slow

JANUARY = {"period": "month", "start": "2025-01-01", "end": "2025-01-31"}
BOUGHT = datetime(2025, 1, 5, tzinfo=UTC)


def _buy_in_euros(api, user: str, value: float = 10) -> None:
    body = renewal_body(user, f"{user}-1", "monthly", BOUGHT, 30, value, currency="EUR", country="FR")
    assert api.set_transaction(user, **body).status_code == 200


def _total(api, user: str) -> float:
    return api.get(user).json()["data"]["total_revenue_usd"]


def _shop(api) -> None:
    api.product("monthly", "premium", "P1M")


def test_loading_rates_reprices_every_profile_and_the_metrics(api, database_url, tmp_path):
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    api.create("dollars")
    assert api.set_transaction("dollars", **renewal_body("d", "d1", "monthly", BOUGHT, 30, 5)).status_code == 200
    env = operator_env(tmp_path, database_url)
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,usd_per_unit,as_of\nEUR,2.00,2025-06-01\n")

    loaded = run(env, "rates", "load", str(rates))
    assert "repricing at the new exchange rates: 2 profiles" in loaded.stderr
    assert "rebuilding" not in loaded.stderr
    assert (_total(api, "a"), _total(api, "dollars")) == (20.0, 5.0)
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 25.0
    verified = run(env, "verify")
    assert "0 profile(s) differ" in verified.stderr

    again = run(env, "rates", "load", str(rates))  # the same rates: nothing to reprice
    assert "repricing" not in again.stderr and _total(api, "a") == 20.0


def test_a_release_with_new_shipped_rates_is_repriced_once(api, runtime, monkeypatch):
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    before = _total(api, "a")
    assert repricing.reprice(runtime) == 0  # records the rates the ledger is priced at

    shipped = [rate for rate in catalog_rules.default_rates() if rate.currency != "EUR"]
    new_release = (*shipped, catalog_rules.Rate("EUR", Decimal("3"), date(2026, 1, 1)))
    monkeypatch.setattr(catalog_rules, "default_rates", lambda: new_release)
    assert repricing.reprice(runtime) == 1
    assert before != 30.0 and _total(api, "a") == 30.0
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 30.0  # no rebuild needed
    assert upkeep.rebuild_pending(runtime) == 0
    assert list(verification.verify(runtime)) == []
    assert repricing.reprice(runtime) == 0


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


def test_writes_while_rates_load_end_at_the_new_rates(api, runtime, monkeypatch):
    """Writers buying in euros while rates load: none stores a total, or adds to the metrics, at
    rates that are no longer in force, and they are not held up while the profiles are repriced."""
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 1)
    _shop(api)
    users = [f"w{n}" for n in range(4)]
    for user in users:
        assert api.create(user).status_code == 200
    for n in range(12):  # profiles the writers leave alone: a page each to reprice
        api.create(f"idle{n}")
        _buy_in_euros(api, f"idle{n}")
    app_id = UUID(api.app_id)
    loading, done, failures, purchases = threading.Event(), threading.Event(), [], []

    def buy(user: str) -> None:
        month = 0
        while not done.is_set() or month < 3:
            bought = BOUGHT + timedelta(days=31 * month)
            body = renewal_body(user, f"{user}-{month}", "monthly", bought, 30, 10, currency="EUR", country="FR")
            ref = ProfileRef(customer_user_id=user)
            try:
                purchases_service.set_transaction(runtime, app_id, ref, TransactionIn.model_validate(body))
            except Exception as exc:  # noqa: BLE001 - reported by the test below
                failures.append(exc)
                return
            purchases.append(user)
            loading.set()
            month += 1

    writers = [threading.Thread(target=buy, args=(user,)) for user in users]
    for writer in writers:
        writer.start()
    loading.wait(timeout=30)
    writes_at_each_page = []
    for value in ("2", "3", "4"):
        text = f"currency,usd_per_unit,as_of\nEUR,{value},2025-06-01\n"
        repricing.load_rates(runtime, text, lambda done: writes_at_each_page.append(len(purchases)))
    done.set()
    for writer in writers:
        writer.join(timeout=60)
    assert failures == []
    assert writes_at_each_page[-1] > writes_at_each_page[0]  # writes went on between the pages
    assert list(verification.verify(runtime)) == []
    assert upkeep.matches_ledger(runtime, app_id)
    assert all(_total(api, user) % 40 == 0 for user in users)  # every month at 10 EUR at 4 USD


def test_profiles_with_nothing_to_recompute_are_walked_past_together(api, runtime, monkeypatch):
    """Only a profile with a price in a currency whose rate moved costs a recomputation: a page
    recomputes up to REPRICING_PAGE of them and moves every other profile it walks past to the
    new rates in one statement, so the pages go at the pace of the work."""
    _shop(api)
    for n in range(5):
        api.create(f"euros{n}")
        _buy_in_euros(api, f"euros{n}")
    for n in range(20):
        api.create(f"dollars{n}")
        body = renewal_body(f"d{n}", f"d{n}", "monthly", BOUGHT, 30, 5)
        assert api.set_transaction(f"dollars{n}", **body).status_code == 200
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 2)
    pages = []
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-06-01\n", pages.append)

    assert len(pages) == 3 and pages[-1] == 25  # 2 + 2 + 1 recomputed, all 25 walked
    assert [_total(api, f"euros{n}") for n in range(5)] == [20.0] * 5
    assert {_total(api, f"dollars{n}") for n in range(20)} == {5.0}
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 5 * 20.0 + 20 * 5.0
    assert list(verification.verify(runtime)) == []


def test_a_page_moves_the_profiles_of_several_apps_together(api, runtime, client):
    """The profiles a page recomputes add their changes up, each app's into its own rollups."""
    other = new_app(runtime, client, "Other")
    for shop in (api, other):
        _shop(shop)
        for n in range(3):
            shop.create(f"euros{n}")
            _buy_in_euros(shop, f"euros{n}", value=10 + n)
    pages = []
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-06-01\n", pages.append)

    assert pages == [5, 6]  # the first page stops at its fifth recomputed profile
    for shop in (api, other):
        assert [_total(shop, f"euros{n}") for n in range(3)] == [20.0, 22.0, 24.0]
        assert metrics(shop, **JANUARY)["data"][0]["gross_usd"] == 66.0
        assert upkeep.matches_ledger(runtime, UUID(shop.app_id))
    assert list(verification.verify(runtime)) == []


def test_a_profile_left_behind_the_walk_is_repriced_before_the_repricing_ends(api, runtime, monkeypatch):
    """No write moves a profile to an older generation of rates; should one be found there once
    the walk has reached the end, the walk starts again rather than end the repricing."""
    _shop(api)
    api.create("euros")
    _buy_in_euros(api, "euros")
    api.create("nothing")  # no price in any currency: moving it back changes no figure
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 1)
    walked = []

    def move_back(done: int) -> None:
        walked.append(done)
        if done == 2:  # both walked past
            with runtime.db.engine.begin() as conn:
                conn.execute(
                    sa.update(profiles)
                    .where(profiles.c.customer_user_id == "nothing")
                    .values(rates_generation=profiles.c.rates_generation - 1)
                )

    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-06-01\n", move_back)
    assert walked[-1] == 3  # walked past again
    with runtime.db.engine.begin() as conn:
        generations = set(conn.execute(sa.select(profiles.c.rates_generation)).scalars())
        assert generations == {conn.execute(sa.select(ledger_pricing.c.generation)).scalar()}
    assert not repricing.repricing(runtime) and _total(api, "euros") == 20.0
    assert list(verification.verify(runtime)) == []


class _Stopped(Exception):
    """Stands for the process applying new rates being stopped half-way."""


def _stop(done: int) -> None:
    raise _Stopped


def test_a_repricing_ending_leaves_the_next_one_running(api, runtime, monkeypatch):
    """Between the end of one process's walk and its ending the repricing, another process ends
    that repricing and starts the next (a load of rates, stopped after its first page): the next
    one is not ended with profiles still at the rates before it."""
    _shop(api)
    for n in range(3):
        api.create(f"euros{n}")
        _buy_in_euros(api, f"euros{n}")
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 1)
    walk_ended = purchases_repository.any_priced_before
    meanwhile = []

    def another_process_loads_rates(conn, generation: int) -> bool:
        left_behind = walk_ended(conn, generation)
        if not meanwhile:
            meanwhile.append(generation)
            with pytest.raises(_Stopped):
                repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,3,2025-06-01\n", _stop)
        return left_behind

    monkeypatch.setattr(purchases_repository, "any_priced_before", another_process_loads_rates)
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-06-01\n")
    assert meanwhile and repricing.repricing(runtime)  # the next one is still under way

    monkeypatch.setattr(purchases_repository, "any_priced_before", walk_ended)
    repricing.reprice(runtime)
    assert [_total(api, f"euros{n}") for n in range(3)] == [30.0] * 3
    assert list(verification.verify(runtime)) == []
    assert upkeep.matches_ledger(runtime, UUID(api.app_id))


def test_writes_reaching_profiles_before_the_repricing_move_them_to_the_new_rates(
    api, runtime, database_url, tmp_path, monkeypatch
):
    """A load of rates stopped after its first page: the profiles written meanwhile (a purchase,
    a grant, a deletion) move to the new rates themselves, and `subledger migrate` finishes."""
    _shop(api)
    users = [f"u{n}" for n in range(5)]
    for user in users:
        api.create(user)
        _buy_in_euros(api, user)
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-06-01\n")
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 1)
    with pytest.raises(_Stopped):
        repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,3,2025-06-01\n", _stop)

    env = operator_env(tmp_path, database_url)
    waiting = api.admin("GET", "/metrics/?period=month&start=2025-01-01&end=2025-01-31")
    assert waiting.status_code == 503 and waiting.json()["error_code"] == "metrics_rebuilding"
    assert waiting.headers["Retry-After"] == "30"
    refused = run(env, "verify", check=False)
    assert refused.returncode == 1 and "still being applied" in refused.stderr
    renewal = renewal_body("u0", "u0-2", "monthly", BOUGHT + timedelta(days=31), 30, 10, currency="EUR", country="FR")
    assert api.set_transaction("u0", **renewal).status_code == 200
    assert api.grant("u1", access_level_id="premium").status_code == 200
    assert api.delete("u2").status_code == 204

    finished = run(env, "migrate")
    assert "repricing at the new exchange rates" in finished.stderr
    assert "0 profile(s) differ" in run(env, "verify").stderr  # the metrics too
    assert [_total(api, user) for user in ("u0", "u1", "u3", "u4")] == [60.0, 30.0, 30.0, 30.0]
    january = metrics(api, **JANUARY)["data"][0]
    assert january["gross_usd"] == 4 * 30.0  # u2 deleted, the rest at 3 USD a euro


def test_a_database_that_kept_only_the_digest_of_its_rates_keeps_them_and_reprices_online(api, runtime):
    """Upgraded from a version that recorded only a digest of the rates the ledger is priced at."""
    _shop(api)
    api.create("a")
    _buy_in_euros(api, "a")
    repricing.reprice(runtime)
    with runtime.db.engine.begin() as conn:
        conn.execute(sa.update(ledger_pricing).values(rates=None))

    assert repricing.reprice(runtime) == 0  # the rates in force are those of the digest
    assert upkeep.rebuild_pending(runtime) == 0
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,5,2025-06-01\n")
    assert _total(api, "a") == 50.0 and upkeep.rebuild_pending(runtime) == 0
    assert metrics(api, **JANUARY)["data"][0]["gross_usd"] == 50.0
    assert upkeep.matches_ledger(runtime, UUID(api.app_id))
