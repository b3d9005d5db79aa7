"""Virtual currencies through the contract's endpoints: the document's examples, every error
it names with nothing changed, history pages, credits from purchases, and the admin API."""

import uuid
from datetime import timedelta

import pytest
from support.currencies import TRANSACTIONS, error, transact
from support.database import db_snapshot
from support.purchases import one_time, subscription
from support.serving import operator_env, product, run, run_json, shop

from subledger.core.tables import currency_balances

BALANCES = "/vc/balances/"


def balances(api, user="u"):
    response = api.request("GET", BALANCES, user)
    assert response.status_code == 200, response.text
    return {item["code"]: item["balance"] for item in response.json()["data"]}


def test_the_feature_is_off_until_the_app_turns_it_on(api):
    assert api.create("u").status_code == 200
    for response in (
        transact(api, {"items": [{"currency_code": "COINS", "amount": 5}]}),
        api.request("GET", TRANSACTIONS, "u"),
        api.request("GET", BALANCES, "u"),
    ):
        error(response, 403, "feature_not_enabled")


def test_the_documents_examples(wallet, clock):
    credit = transact(wallet, {"items": [{"currency_code": "COINS", "amount": 500}]})
    assert credit.status_code == 200, credit.text
    body = credit.json()
    assert uuid.UUID(body["transaction_id"]).version == 7
    assert body["balances"] == [{"code": "COINS", "name": "Gold Coins", "balance": 500, "held": 0, "available": 500}]

    debit = transact(wallet, {"items": [{"currency_code": "COINS", "amount": -10}]})
    assert debit.json()["balances"][0]["balance"] == 490

    transact(wallet, {"items": [{"currency_code": "GOLD", "amount": 100}, {"currency_code": "SILVER", "amount": 300}]})
    multi = transact(
        wallet, {"items": [{"currency_code": "GOLD", "amount": -50}, {"currency_code": "SILVER", "amount": -200}]}
    )
    assert [(item["code"], item["balance"]) for item in multi.json()["balances"]] == [("GOLD", 50), ("SILVER", 100)]

    conversion = transact(
        wallet,
        {
            "items": [{"currency_code": "SILVER", "amount": -100}, {"currency_code": "GOLD", "amount": 10}],
            "metadata": {"reason": "exchange"},
        },
    )
    assert conversion.status_code == 200
    assert balances(wallet) == {"COINS": 490, "GEMS": 0, "GOLD": 60, "SILVER": 0}

    listed = wallet.request("GET", BALANCES, "u").json()
    assert isinstance(listed["response_created_at"], int)
    assert listed["data"][0] == {"code": "COINS", "name": "Gold Coins", "balance": 490, "held": 0, "available": 490}

    history = wallet.request("GET", TRANSACTIONS, "u").json()
    newest = history["data"][0]
    assert newest["transaction_id"] == conversion.json()["transaction_id"]
    assert newest["transaction_type"] == "api_transaction"
    assert newest["metadata"] == {"reason": "exchange"}
    assert newest["created_at"].endswith("Z")
    assert {(item["currency_code"], item["amount"], item["balance_after"]) for item in newest["items"]} == {
        ("SILVER", -100, 0),
        ("GOLD", 10, 60),
    }
    assert "metadata" not in history["data"][-1]
    assert history["pagination"] == {"next_cursor": None}


def test_history_pages_newest_first_and_filters_by_currency(wallet, clock):
    made = []
    for amount in range(1, 8):
        clock.current += timedelta(seconds=1)
        made.append(
            transact(wallet, {"items": [{"currency_code": "COINS", "amount": amount}]}).json()["transaction_id"]
        )
    transact(wallet, {"items": [{"currency_code": "GEMS", "amount": 3}]})
    seen, cursor = [], None
    while True:
        query = {"limit": 3, "currency_code": "COINS", **({"cursor": cursor} if cursor else {})}
        page = wallet.request("GET", TRANSACTIONS, "u", params=query).json()
        assert len(page["data"]) <= 3
        seen += [item["transaction_id"] for item in page["data"]]
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    error(wallet.request("GET", TRANSACTIONS, "u", params={"cursor": "not-a-cursor"}), 400, "invalid_cursor")
    error(wallet.request("GET", TRANSACTIONS, "u", params={"limit": 101}), 400, "validation_error")
    error(wallet.request("GET", TRANSACTIONS, "u", params={"limit": 0}), 400, "validation_error")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"items": [{"currency_code": "COINS", "amount": -11}]}, 400, "insufficient_balance"),
        ({"items": [{"currency_code": "TOKENS", "amount": 1}]}, 400, "unknown_currency"),
        (
            {"items": [{"currency_code": "COINS", "amount": 1}, {"currency_code": "COINS", "amount": 2}]},
            400,
            "duplicate_currency",
        ),
        ({"items": [{"currency_code": "COINS", "amount": 0}]}, 400, "amount_zero"),
        ({"items": [{"currency_code": "COINS", "amount": 2**31 - 10}]}, 400, "balance_overflow"),
        ({"items": []}, 400, "empty_items"),
        ({"items": [{"currency_code": "GEMS", "amount": 1}] * 21}, 422, "validation_error"),
        ({"items": [{"currency_code": "GEMS", "amount": 1}], "metadata": {"Bad-Key": "x"}}, 422, "validation_error"),
        ({"items": [{"currency_code": "GEMS", "amount": 1}], "metadata": {"a": "x" * 201}}, 422, "validation_error"),
        (
            {"items": [{"currency_code": "GEMS", "amount": 1}], "metadata": dict.fromkeys("abcdef", "x")},
            422,
            "validation_error",
        ),
        ({"items": [{"currency_code": "GEMS", "amount": 2**31}]}, 422, "validation_error"),
        ({"items": [{"currency_code": "GEMS", "amount": "1"}]}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
def test_every_documented_error_changes_nothing(wallet, runtime, body, status, code):
    transact(wallet, {"items": [{"currency_code": "COINS", "amount": 10}, {"currency_code": "GEMS", "amount": 1}]})
    before = db_snapshot(runtime)
    error(transact(wallet, body), status, code)
    assert db_snapshot(runtime) == before


def test_a_failing_item_undoes_the_others(wallet):
    transact(wallet, {"items": [{"currency_code": "COINS", "amount": 5}]})
    response = transact(
        wallet, {"items": [{"currency_code": "GEMS", "amount": 7}, {"currency_code": "COINS", "amount": -6}]}
    )
    error(response, 400, "insufficient_balance")
    assert balances(wallet) == {"COINS": 5, "GEMS": 0, "GOLD": 0, "SILVER": 0}


def test_an_unknown_profile_and_a_bad_idempotency_key(wallet):
    error(
        transact(wallet, {"items": [{"currency_code": "COINS", "amount": 5}]}, user="nobody"),
        404,
        "profile_does_not_exist",
    )
    error(wallet.request("GET", BALANCES, "nobody"), 404, "profile_does_not_exist")
    for key in ("not-a-uuid", str(uuid.uuid1())):
        bad = transact(wallet, {"items": [{"currency_code": "COINS", "amount": 5}]}, **{"Idempotency-Key": key})
        error(bad, 400, "idempotency_key_invalid")
    assert balances(wallet)["COINS"] == 0


def test_the_rate_limit_answers_429_with_retry_after(wallet, runtime):
    runtime.settings.virtual_currency_rate_per_minute = 6  # a burst of 6, then one every 10 s
    answers = [transact(wallet, {"items": [{"currency_code": "COINS", "amount": 1}]}) for _ in range(8)]
    assert [a.status_code for a in answers].count(200) == 6
    refused = answers[-1]
    error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert balances(wallet)["COINS"] == 6


def test_purchases_credit_what_their_products_grant_once_and_refunds_take_it_back(wallet, runtime):
    coins = wallet.product("coins_100", None, "lifetime", is_consumable=True)
    monthly = wallet.product("monthly", "premium", "P1M")
    grants = {"grants": [{"currency_code": "COINS", "amount": 100}]}
    assert wallet.admin("PUT", f"/virtual-currencies/products/{coins['product_id']}/", grants).status_code == 200
    grants = {"grants": [{"currency_code": "GEMS", "amount": 20}, {"currency_code": "COINS", "amount": 5}]}
    assert wallet.admin("PUT", f"/virtual-currencies/products/{monthly['product_id']}/", grants).status_code == 200

    bought = one_time(store_product_id="coins_100", store_transaction_id="c-1", store_original_transaction_id="c-1")
    assert wallet.set_transaction("u", **bought).status_code == 200
    assert wallet.set_transaction("u", **bought).status_code == 200  # sent again: credited once
    assert balances(wallet)["COINS"] == 100

    trial = subscription(
        store_transaction_id="s-0",
        store_original_transaction_id="s-0",
        offer={"category": "introductory", "type": "free_trial"},
    )
    assert wallet.set_transaction("u", **trial).status_code == 200, wallet.set_transaction("u", **trial).text
    assert balances(wallet) == {"COINS": 100, "GEMS": 0, "GOLD": 0, "SILVER": 0}
    renewal = subscription(store_transaction_id="s-1", store_original_transaction_id="s-0")
    assert wallet.set_transaction("u", **renewal).status_code == 200
    assert balances(wallet) == {"COINS": 105, "GEMS": 20, "GOLD": 0, "SILVER": 0}

    transact(wallet, {"items": [{"currency_code": "COINS", "amount": -90}]})  # 15 left of the 100
    refunded = {**bought, "refunded_at": bought["purchased_at"], "cancellation_reason": "refund"}
    assert wallet.set_transaction("u", **refunded).status_code == 200
    assert balances(wallet)["COINS"] == 0  # as much as was left
    kinds = [item["transaction_type"] for item in wallet.request("GET", TRANSACTIONS, "u").json()["data"]]
    assert kinds == ["refund", "api_transaction", "subscription_renewal", "store_purchase"]


def test_verify_finds_balances_that_differ_from_their_history(wallet, runtime):
    from subledger.purchases import verification

    transact(wallet, {"items": [{"currency_code": "COINS", "amount": 40}]})
    assert list(verification.verify(runtime)) == []
    with runtime.db.write() as conn:
        conn.execute(currency_balances.update().values(balance=41))
    found = list(verification.verify(runtime, fix=True))
    assert [item.get("balances") for item in found] == ["differ"]
    assert balances(wallet)["COINS"] == 40
    assert list(verification.verify(runtime)) == []


def test_the_admin_api_keeps_currencies(wallet):
    listed = wallet.admin("GET", "/virtual-currencies/").json()["data"]
    assert listed["enabled"] is True and [c["code"] for c in listed["currencies"]] == [
        "COINS",
        "GEMS",
        "GOLD",
        "SILVER",
    ]
    again = wallet.admin("POST", "/virtual-currencies/currencies/", {"code": "COINS", "name": "Again"})
    error(again, 400, "base_error")
    error(
        wallet.admin("POST", "/virtual-currencies/currencies/", {"code": "no-dashes", "name": "x"}), 400, "base_error"
    )
    assert (
        wallet.admin("PATCH", "/virtual-currencies/currencies/GEMS/", {"name": "Shiny"}).json()["data"]["name"]
        == "Shiny"
    )
    transact(wallet, {"items": [{"currency_code": "GOLD", "amount": 1}]})
    error(wallet.admin("DELETE", "/virtual-currencies/currencies/GOLD/"), 400, "base_error")  # it has a history
    assert wallet.admin("DELETE", "/virtual-currencies/currencies/SILVER/").status_code == 204
    assert list(balances(wallet)) == ["COINS", "GEMS", "GOLD"]
    unknown = wallet.admin("PUT", f"/virtual-currencies/products/{uuid.uuid4()}/", {"grants": []})
    error(unknown, 400, "base_error")


def test_an_app_sees_only_its_own_currencies(wallet, runtime, client):
    from support.api import new_app

    other = new_app(runtime, client, "Other")
    other.admin("PATCH", "/virtual-currencies/", {"enabled": True})
    assert other.create("u").status_code == 200
    error(transact(other, {"items": [{"currency_code": "COINS", "amount": 1}]}), 400, "unknown_currency")
    assert other.request("GET", BALANCES, "u").json()["data"] == []


@pytest.mark.slow  # runs the command line in processes
def test_the_currencies_cli(tmp_path):
    env = operator_env(tmp_path / "data")
    run(env, "migrate")
    app = shop(env)["app_id"]
    product(env, app, "coins100", "--period", "lifetime", "--consumable")
    assert run_json(env, "currencies", "configure", "--app", app, "--on")["enabled"] is True
    assert run_json(env, "currencies", "add", "--app", app, "COINS", "Gold Coins") == {
        "code": "COINS",
        "name": "Gold Coins",
    }
    assert "1 to 30 ASCII letters" in run(env, "currencies", "add", "--app", app, "no-dash", "x", check=False).stderr
    granted = run_json(env, "currencies", "grant", "--app", app, "--product", "coins100", "COINS=100")
    assert granted["grants"] == [{"currency_code": "COINS", "amount": 100}]
    assert (
        "no currency GEMS"
        in run(env, "currencies", "grant", "--app", app, "--product", "coins100", "GEMS=5", check=False).stderr
    )
    assert "granted by a product" in run(env, "currencies", "delete", "--app", app, "COINS", check=False).stderr
    assert run_json(env, "currencies", "rename", "--app", app, "COINS", "Coins")["name"] == "Coins"
    listed = run_json(env, "currencies", "list", "--app", app)
    assert listed == {"enabled": True, "currencies": [{"code": "COINS", "name": "Coins"}]}


def test_only_newly_recorded_purchases_credit_and_a_credit_stops_at_the_largest_balance(wallet, runtime):
    coins = wallet.product("coins_100", None, "lifetime", is_consumable=True)
    bought = one_time(store_product_id="coins_100", store_transaction_id="old-1", store_original_transaction_id="old-1")
    assert wallet.set_transaction("u", **bought).status_code == 200  # before the product credited anything
    grants = {"grants": [{"currency_code": "COINS", "amount": 100}]}
    assert wallet.admin("PUT", f"/virtual-currencies/products/{coins['product_id']}/", grants).status_code == 200
    changed = {**bought, "variation_id": "v2"}  # the store sends the old transaction again, changed
    assert wallet.set_transaction("u", **changed).status_code == 200
    assert balances(wallet)["COINS"] == 0

    assert transact(wallet, {"items": [{"currency_code": "COINS", "amount": 2**31 - 1 - 30}]}).status_code == 200
    new = one_time(store_product_id="coins_100", store_transaction_id="new-1", store_original_transaction_id="new-1")
    assert wallet.set_transaction("u", **new).status_code == 200  # the purchase is recorded, whatever the balance
    assert balances(wallet)["COINS"] == 2**31 - 1
    history = wallet.request("GET", TRANSACTIONS, "u").json()["data"]
    assert history[0]["transaction_type"] == "store_purchase" and history[0]["items"][0]["amount"] == 30


def test_an_imported_history_credits_nothing(wallet, runtime):
    from subledger.purchases import service as purchases_service
    from subledger.purchases.schemas import TransactionIn

    coins = wallet.product("coins_100", None, "lifetime", is_consumable=True)
    grants = {"grants": [{"currency_code": "COINS", "amount": 100}]}
    assert wallet.admin("PUT", f"/virtual-currencies/products/{coins['product_id']}/", grants).status_code == 200
    past = one_time(store_product_id="coins_100", store_transaction_id="imp-1", store_original_transaction_id="imp-1")
    assert purchases_service.import_transactions(runtime, uuid.UUID(wallet.app_id), "u", [TransactionIn(**past)]) == 1
    assert balances(wallet)["COINS"] == 0
