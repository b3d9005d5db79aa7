"""Many writers on one profile at once, across several server processes.

The same operations are sent concurrently for one app and one after another
for a second app; both profiles must end in the same state.
"""

import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select
from support.clock import wait_until
from support.receiver import Receiver
from support.serving import SUBLEDGER, operator_env, product, run, serving, shop

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.tables import deliveries, transactions

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)

BASE_DATE = "2025-{month:02d}-{day:02d}T00:00:00.000000+0000"


def date(index: int) -> str:
    return BASE_DATE.format(month=1 + index // 28, day=1 + index % 28)


def operations() -> list[tuple[str, dict]]:
    ops = []
    for i in range(24):  # renewals of one chain, each sent twice
        tx = {
            "purchase_type": "subscription",
            "store": "app_store",
            "store_product_id": "monthly",
            "store_transaction_id": f"renewal-{i}",
            "store_original_transaction_id": "chain",
            "price": {"country": "US", "currency": "USD", "value": 4.99},
            "purchased_at": date(i),
            "originally_purchased_at": date(0),
            "expires_at": date(i + 1),
            "renew_status": True,
        }
        ops += [("/purchase/set/transaction/", tx)] * 2
    for i in range(6):
        ops.append(
            (
                "/purchase/set/transaction/",
                {
                    "purchase_type": "one_time_purchase",
                    "store": "play_store",
                    "store_product_id": "coins",
                    "store_transaction_id": f"coins-{i}",
                    "store_original_transaction_id": f"coins-{i}",
                    "price": {"country": "DE", "currency": "EUR", "value": 0.99},
                    "purchased_at": date(i),
                },
            )
        )
    for i in range(3):
        ops.append(
            (
                "/purchase/profile/grant/access-level/",
                {"access_level_id": "pro", "starts_at": date(i * 10), "expires_at": date(i * 10 + 5)},
            )
        )
    random.Random(7).shuffle(ops)
    return ops


def migrated_env(request, tmp_path, engine: str) -> dict:
    """The operator's environment for a migrated database of ``engine``."""
    url = request.getfixturevalue("postgresql_url") if engine == "postgresql" else None
    env = operator_env(tmp_path / "data", url)
    run(env, "migrate")
    return env


def setup_app(env: dict) -> dict:
    app = shop(env, levels=("pro",))
    product(env, app["app_id"], "coins", "--period", "lifetime", "--consumable", store="play_store")
    return app


def comparable(profile: dict) -> dict:
    ignored = {"app_id", "profile_id", "timestamp"}
    state = {key: value for key, value in profile.items() if key not in ignored}
    for item in state["subscriptions"] + state["non_subscriptions"]:
        item.pop("purchase_id")
    for level in state["access_levels"]:
        if level["store"] == "adapty":  # a grant's ids are generated from the profile's, as purchase ids are
            level.pop("store_transaction_id")
            level.pop("store_original_transaction_id")
    return state


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_writes_end_in_the_serial_state(request, tmp_path, engine):
    env = migrated_env(request, tmp_path, engine)
    concurrent_app, serial_app = setup_app(env), setup_app(env)
    ops = operations()

    with serving(env, workers=3) as base, httpx.Client(base_url=base + "/api/v2/server-side-api", timeout=60) as http:

        def headers(app):
            return {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "buyer"}

        for app in (concurrent_app, serial_app):
            assert http.post("/profile/", headers=headers(app)).status_code == 200

        def send(op):
            return http.post(op[0], headers=headers(concurrent_app), json=op[1])

        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(send, ops))
        assert [r.status_code for r in responses] == [200] * len(ops), {
            r.text for r in responses if r.status_code != 200
        }

        for path, body in ops:
            assert http.post(path, headers=headers(serial_app), json=body).status_code == 200

        concurrent = http.get("/profile/", headers=headers(concurrent_app)).json()["data"]
        serial = http.get("/profile/", headers=headers(serial_app)).json()["data"]

    assert comparable(concurrent) == comparable(serial)
    assert concurrent["subscriptions"][0]["store_transaction_id"] == "renewal-23"
    assert concurrent["total_revenue_usd"] == round(24 * 4.99 + 6 * 0.99 * 1.0389, 2)
    db = Database(
        Settings(database_url=env.get("SUBLEDGER_DATABASE_URL", ""), data_dir=tmp_path / "data").sqlalchemy_url
    )
    with db.read() as conn:
        assert len(conn.execute(transactions.select()).all()) == 2 * 30  # each once, per app
    db.dispose()
    verified = run(env, "verify")
    assert "0 profile(s) differ" in verified.stderr


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_profiles_racing_for_one_transaction_id_leave_it_to_one(request, tmp_path, engine):
    env = migrated_env(request, tmp_path, engine)
    app = setup_app(env)
    buyers = [f"buyer-{n}" for n in range(12)]
    tx = {
        "purchase_type": "one_time_purchase",
        "store": "play_store",
        "store_product_id": "coins",
        "store_transaction_id": "contested",
        "store_original_transaction_id": "contested",
        "price": {"country": "DE", "currency": "EUR", "value": 0.99},
        "purchased_at": date(0),
    }

    with serving(env, workers=3) as base, httpx.Client(base_url=base + "/api/v2/server-side-api", timeout=60) as http:

        def headers(user):
            return {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": user}

        for user in buyers:
            assert http.post("/profile/", headers=headers(user)).status_code == 200
        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(
                pool.map(lambda user: http.post("/purchase/set/transaction/", headers=headers(user), json=tx), buyers)
            )
        winners = [user for user, r in zip(buyers, responses, strict=True) if r.status_code == 200]
        assert len(winners) == 1, [r.text for r in responses]
        assert {r.json()["error_code"] for r in responses if r.status_code != 200} == {"store_transaction_id_error"}
        holders = [
            user for user in buyers if http.get("/profile/", headers=headers(user)).json()["data"]["non_subscriptions"]
        ]
    assert holders == winners
    db = Database(
        Settings(database_url=env.get("SUBLEDGER_DATABASE_URL", ""), data_dir=tmp_path / "data").sqlalchemy_url
    )
    with db.read() as conn:
        assert len(conn.execute(transactions.select()).all()) == 1
    db.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_apps_rate_limit_holds_across_server_processes(request, tmp_path, engine):
    env = migrated_env(request, tmp_path, engine)
    app = shop(env)
    rate = 4
    run(env, "apps", "configure", "--app", app["app_id"], "--rate-limit", str(rate))
    headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "nobody"}

    with serving(env, workers=3) as base:

        def ask(_):
            # A connection of its own: the requests spread over the server's processes.
            return httpx.get(base + "/api/v2/server-side-api/profile/", headers=headers, timeout=30).status_code

        started = time.monotonic()
        statuses = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            while time.monotonic() - started < 2:
                statuses += pool.map(ask, range(16))
        elapsed = time.monotonic() - started

    assert set(statuses) == {404, 429}
    # A burst of twice the rate, then the rate, for the app as a whole.
    assert rate * elapsed <= statuses.count(404) <= 2 * rate + rate * elapsed


def _wallet(http: httpx.Client, app: dict) -> dict[str, str]:
    """Virtual currencies on for the app, COINS among them, and a profile holding 1,000: its headers."""
    admin = {"Authorization": f"Api-Key {app['secret_api_key']}"}
    assert http.patch("/api/admin/v1/virtual-currencies/", headers=admin, json={"enabled": True}).status_code == 200
    coins = {"code": "COINS", "name": "Coins"}
    assert http.post("/api/admin/v1/virtual-currencies/currencies/", headers=admin, json=coins).status_code == 201
    headers = {**admin, "adapty-customer-user-id": "spender"}
    assert http.post("/api/v2/server-side-api/profile/", headers=headers).status_code == 200
    credit = {"items": [{"currency_code": "COINS", "amount": 1000}]}
    assert http.post("/api/v2/server-side-api/vc/transactions/", headers=headers, json=credit).status_code == 200
    return headers


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_debits_of_one_balance_never_overdraw_it(request, tmp_path, engine):
    env = migrated_env(request, tmp_path, engine)
    app = shop(env)
    with serving(env, workers=2) as base, httpx.Client(base_url=base, timeout=60) as http:
        headers = _wallet(http, app)
        debit = {"items": [{"currency_code": "COINS", "amount": -30}]}

        def spend(_n):
            return http.post("/api/v2/server-side-api/vc/transactions/", headers=headers, json=debit)

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(spend, range(40)))  # 40 x 30 asked of 1,000: 33 can be paid
        codes = [answer.status_code for answer in answers]
        assert codes.count(200) == 33, {answer.text for answer in answers if answer.status_code != 200}
        assert {answer.json()["error_code"] for answer in answers if answer.status_code != 200} == {
            "insufficient_balance"
        }
        balances = http.get("/api/v2/server-side-api/vc/balances/", headers=headers).json()["data"]
        assert balances[0]["balance"] == 1000 - 33 * 30
        history = http.get("/api/v2/server-side-api/vc/transactions/", headers=headers, params={"limit": 100})
        afters = [item["items"][0]["balance_after"] for item in history.json()["data"]]
        assert afters == [1000 - n * 30 for n in range(33, -1, -1)]  # each change applied to the one before
    assert "0 profile(s) differ" in run(env, "verify").stderr


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_write_retried_fifty_times_at_once_with_one_key_is_done_once(request, tmp_path, engine):
    env = migrated_env(request, tmp_path, engine)
    app = shop(env)
    with serving(env, workers=2) as base, httpx.Client(base_url=base, timeout=60) as http:
        headers = {**_wallet(http, app), "Idempotency-Key": "6f1c1d7e-93a4-4c41-9d4b-3b1f0c2a7e55"}
        debit = {"items": [{"currency_code": "COINS", "amount": -7}], "metadata": {"order": "42"}}

        def retry(_n):
            return http.post("/api/v2/server-side-api/vc/transactions/", headers=headers, json=debit)

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(retry, range(50)))
        done = [answer for answer in answers if answer.status_code == 200]
        waiting = [answer for answer in answers if answer.status_code == 409]
        assert len(done) + len(waiting) == 50 and done
        assert {answer.json()["error_code"] for answer in waiting} <= {"idempotency_in_flight"}
        assert len({answer.json()["transaction_id"] for answer in done}) == 1  # the one answer, kept
        after = retry(0)
        assert after.json() == done[0].json() and after.headers["idempotent-replayed"] == "true"
        balances = http.get("/api/v2/server-side-api/vc/balances/", headers=headers).json()["data"]
        assert balances[0]["balance"] == 993


def test_two_servers_and_two_workers_over_pgbouncer_deliver_each_event_once_and_share_rate_limits(
    pgbouncer_url, tmp_path
):
    env = {**operator_env(tmp_path / "data", pgbouncer_url), "SUBLEDGER_DATABASE_TRANSACTION_POOLING": "1"}
    run(env, "migrate")
    busy, limited = setup_app(env), shop(env, "Limited")
    run(env, "apps", "configure", "--app", limited["app_id"], "--rate-limit", "10")  # 10 a second, 20 at once
    with Receiver() as receiver:
        run(env, "webhooks", "create", "--app", busy["app_id"], "--url", receiver.url)
        workers = [subprocess.Popen([*SUBLEDGER, "worker"], env=env, stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            with serving(env) as first, serving(env) as second:
                api = "/api/v2/server-side-api"
                clients = [httpx.Client(base_url=base + api, timeout=60) for base in (first, second)]

                def buy(n: int) -> httpx.Response:
                    headers = {
                        "Authorization": f"Api-Key {busy['secret_api_key']}",
                        "adapty-customer-user-id": f"u{n % 6}",
                    }
                    tx = {
                        "purchase_type": "one_time_purchase",
                        "store": "play_store",
                        "store_product_id": "coins",
                        "store_transaction_id": f"coins-{n}",
                        "store_original_transaction_id": f"coins-{n}",
                        "price": {"country": "DE", "currency": "EUR", "value": 0.99},
                        "purchased_at": date(n % 28),
                    }
                    return clients[n % 2].post("/purchase/set/transaction/", headers=headers, json=tx)

                for n in range(6):
                    headers = {"Authorization": f"Api-Key {busy['secret_api_key']}", "adapty-customer-user-id": f"u{n}"}
                    assert clients[n % 2].post("/profile/", headers=headers).status_code == 200
                with ThreadPoolExecutor(max_workers=12) as pool:
                    answers = list(pool.map(buy, range(60)))
                assert [answer.status_code for answer in answers] == [200] * 60  # no deadlock, no error

                url = Settings(database_url=pgbouncer_url, data_dir=tmp_path / "data").sqlalchemy_url
                db = Database(url, prepared_statements=False)
                with db.read() as conn:
                    expected = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
                db.dispose()
                assert expected >= 60
                wait_until(lambda: len([r for r in receiver.received if r["json"]]) >= expected, timeout=60)
                time.sleep(1)  # anything sent twice would have arrived by now
                ids = [r["headers"]["Subledger-Event-Id"] for r in receiver.received if r["json"]]
                assert len(ids) == len(set(ids)) == expected  # each event once to the endpoint

                limited_headers = {"Authorization": f"Api-Key {limited['secret_api_key']}"}
                started = time.monotonic()
                burst = [clients[n % 2].get("/paywalls/", headers=limited_headers) for n in range(80)]
                elapsed = time.monotonic() - started
                admitted = [n for n, answer in enumerate(burst) if answer.status_code == 200]
                assert {answer.status_code for answer in burst} == {200, 429}
                # One bucket for both servers: a burst of 20 and 10 a second, give or take a lease each.
                assert 20 <= len(admitted) <= 20 + 10 * elapsed + 2
                assert {n % 2 for n in admitted} == {0, 1}
                for client in clients:
                    client.close()
        finally:
            for process in workers:
                process.terminate()
                assert process.wait(timeout=30) == 0
