"""`purchase/paddle/token/validate/`: the real client code against a stand-in of Paddle's API on
loopback, through HTTP on both engines."""

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
from support import contract
from support.database import db_snapshot
from support.fake_paddle import KEY, START, FakePaddle, at, refund, subscription, transaction

from subledger.stores import service as stores_service
from subledger.stores.paddle import service as paddle_service

URL = "/api/v2/server-side-api/purchase/paddle/token/validate/"
EXAMPLE = {"customer_user_id": "<YOUR_CUSTOMER_USER_ID>", "paddle_token": "live_7d279f61a3339fed520f7cd8c08"}


def validate(api, customer_user_id: str, token: str):
    body = {"customer_user_id": customer_user_id, "paddle_token": token}
    return api.client.post(URL, json=body, headers=api.headers())


def error_code(response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error_code"]


@pytest.fixture
def paddle_app(api, runtime, clock):
    api.product("pri_monthly", "premium", "P1M", store="paddle")
    api.product("pri_coins", None, "P1M", store="paddle")
    clock.current = START + timedelta(days=75)
    with FakePaddle(KEY, page_size=2) as fake:
        runtime.settings.paddle_api_base = fake.url
        paddle_service.configure(runtime, uuid.UUID(api.app_id), api_key=KEY, sandbox=True)
        fake.objects["subscriptions/sub_1"] = subscription()
        fake.transactions = [transaction(n) for n in (0, 1, 2)]
        fake.objects["transactions/txn_2"] = fake.transactions[2]
        coins = transaction(9, total=499, subscription_id=None, items=[{"price": {"id": "pri_coins"}}])
        fake.objects["transactions/txn_9"] = coins
        fake.transactions.append(coins)
        api.fake = fake
        yield api


def test_a_subscription_and_its_history_are_imported_for_a_new_profile(paddle_app, runtime):
    response = validate(paddle_app, "paddle-user", "sub_1")
    assert response.status_code == 200, response.text
    profile = response.json()["data"]
    contract.check(contract.PROFILE_RESPONSE, response.json())
    assert profile["customer_user_id"] == "paddle-user"
    # Three monthly payments of $9.99, read two a page; the access runs to the third period's end.
    assert profile["total_revenue_usd"] == 29.97
    assert [(s["store"], s["store_transaction_id"], s["environment"]) for s in profile["subscriptions"]] == [
        ("paddle", "txn_2", "Sandbox")
    ]
    level = profile["access_levels"][0]
    assert (level["access_level_id"], level["expires_at"]) == ("premium", "2025-04-01T00:00:00.000000+00:00")
    assert level["store_original_transaction_id"] == "sub_1"
    ledger = ("transactions", "events", "access_grants")
    before = {table: db_snapshot(runtime)[table] for table in ledger}
    again = validate(paddle_app, "paddle-user", "sub_1")  # again: the ledger and its events stay as they were
    assert again.status_code == 200 and again.json()["data"]["total_revenue_usd"] == 29.97
    assert {table: db_snapshot(runtime)[table] for table in ledger} == before
    assert all(
        request.startswith(("/subscriptions/", "/transactions", "/adjustments")) for request in paddle_app.fake.requests
    )


def test_a_transaction_id_imports_its_subscription_or_a_one_time_purchase(paddle_app):
    by_transaction = validate(paddle_app, "by-txn", "txn_2")
    assert by_transaction.status_code == 200, by_transaction.text
    assert by_transaction.json()["data"]["total_revenue_usd"] == 29.97
    coins = validate(paddle_app, "coin-buyer", "txn_9")
    assert coins.status_code == 200, coins.text
    purchase = coins.json()["data"]["non_subscriptions"]
    assert [(p["store_product_id"], p["store_transaction_id"]) for p in purchase] == [("pri_coins", "txn_9")]


def test_refunds_cancellation_and_a_trial(paddle_app, clock):
    fake = paddle_app.fake
    fake.objects["subscriptions/sub_1"] = subscription(
        scheduled_change={"action": "cancel", "effective_at": "2025-03-31T00:00:00Z"}, updated_at="2025-03-10T00:00:00Z"
    )
    fake.transactions[0] = transaction(
        0, total=0, items=[{"price": {"id": "pri_monthly", "trial_period": {"interval": "day", "frequency": 30}}}]
    )  # noqa: E501
    fake.adjustments = [refund("txn_2", START + timedelta(days=62))]
    response = validate(paddle_app, "refunded", "sub_1")
    assert response.status_code == 200, response.text
    profile = response.json()["data"]
    assert profile["total_revenue_usd"] == 9.99  # the trial was free, txn_2 refunded
    # Access ended with the refund; renewal had been turned off.
    level = profile["access_levels"][0]
    assert level["expires_at"] == "2025-03-04T00:00:00.000000+00:00"
    assert level["renewal_cancelled_at"] == "2025-03-10T00:00:00.000000+00:00"
    latest = profile["subscriptions"][0]
    assert latest["store_transaction_id"] == "txn_2" and latest["refunded_at"] == "2025-03-04T00:00:00.000000+00:00"


def test_the_documented_errors(paddle_app, api, runtime):
    # The document's example token is no Paddle id: Paddle does not know it.
    assert error_code(paddle_app.client.post(URL, json=EXAMPLE, headers=paddle_app.headers())) == (
        "invalid_paddle_credentials_or_purchase_not_found"
    )
    assert error_code(validate(paddle_app, "u", "sub_unknown")) == "invalid_paddle_credentials_or_purchase_not_found"
    paddle_service.configure(runtime, uuid.UUID(paddle_app.app_id), api_key="pdl_wrong")
    assert error_code(validate(paddle_app, "u", "sub_1")) == "invalid_paddle_credentials_or_purchase_not_found"
    paddle_service.configure(runtime, uuid.UUID(paddle_app.app_id), api_key=KEY)
    paddle_app.fake.objects["subscriptions/sub_2"] = subscription("sub_2", items=[{"price": {"id": "pri_other"}}])
    paddle_app.fake.transactions.append(
        transaction(5, subscription_id="sub_2", id="txn_other", items=[{"price": {"id": "pri_other"}}])
    )  # noqa: E501
    assert error_code(validate(paddle_app, "u", "sub_2")) == "no_products_found"
    assert paddle_app.get("u").status_code == 404  # nothing was recorded for a refused purchase


def test_an_app_without_paddle_and_bad_bodies(api, runtime):
    before = db_snapshot(runtime)
    assert error_code(api.client.post(URL, json=EXAMPLE, headers=api.headers())) == "paddle_api_key_not_found"
    for body, source in (
        ({"customer_user_id": "u"}, "paddle_token"),
        ({"paddle_token": "sub_1"}, "customer_user_id"),
        ({"customer_user_id": "u", "paddle_token": "../subscriptions/sub_1"}, "paddle_token"),
    ):
        refused = api.client.post(URL, json=body, headers=api.headers())
        assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == source
    assert db_snapshot(runtime) == before


def test_paddle_out_of_reach_is_502(paddle_app, runtime):
    runtime.settings.paddle_api_base = "http://127.0.0.1:9"  # nothing listens there
    refused = validate(paddle_app, "u", "sub_1")
    assert refused.status_code == 502 and refused.json()["error_code"] == "paddle_unavailable"


# Notifications ---------------------------------------------------------------------

SECRET = "pdl_ntfset_secret"


def notify(api, clock, event_type: str, data: dict, event_id: str = "evt_1", secret: str = SECRET, lag: int = 0):
    """POST a notification signed as Paddle signs it: HMAC-SHA256 of "ts:body" (``lag`` seconds old)."""
    body = json.dumps({"event_id": event_id, "event_type": event_type, "occurred_at": at(clock.current), "data": data})
    stamp = str(int(clock.current.timestamp()) - lag)
    signature = hmac.new(secret.encode(), f"{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return api.client.post(
        f"/stores/paddle/{api.app_id}/notifications/",
        content=body.encode(),
        headers={"Paddle-Signature": f"ts={stamp};h1={signature}", "Content-Type": "application/json"},
    )


@pytest.fixture
def notified_app(paddle_app, runtime):
    paddle_service.configure(runtime, uuid.UUID(paddle_app.app_id), notification_secret=SECRET)
    paddle_app.fake.objects["subscriptions/sub_1"] = subscription(custom_data={"customer_user_id": "web-user"})
    assert paddle_app.create("web-user").status_code == 200
    return paddle_app


def test_notifications_record_a_subscription_then_its_refund(notified_app, clock, runtime):
    created = notify(notified_app, clock, "subscription.created", {"id": "sub_1"})
    assert created.status_code == 200 and created.json() == {"status": "applied"}, created.text
    profile = notified_app.get("web-user").json()["data"]
    assert profile["total_revenue_usd"] == 29.97 and profile["access_levels"][0]["access_level_id"] == "premium"
    # Paddle delivers again: nothing changes.
    assert notify(notified_app, clock, "subscription.created", {"id": "sub_1"}).json() == {"status": "duplicate"}
    notified_app.fake.adjustments = [refund("txn_2", clock.current)]
    adjustment = {"id": "adj_txn_2", "transaction_id": "txn_2", "action": "refund"}
    assert notify(notified_app, clock, "adjustment.created", adjustment, "evt_2").json() == {"status": "applied"}
    assert notified_app.get("web-user").json()["data"]["total_revenue_usd"] == 19.98
    # An event that names nothing the ledger keeps is recorded and changes nothing.
    assert notify(notified_app, clock, "customer.updated", {"id": "ctm_1"}, "evt_3").json() == {"status": "ignored"}


def test_notifications_that_are_not_paddles_are_refused_and_logged(notified_app, clock, runtime):
    before = {table: db_snapshot(runtime)[table] for table in ("transactions", "store_notifications")}
    for response in (
        notify(notified_app, clock, "subscription.created", {"id": "sub_1"}, secret="someone-elses"),
        notify(notified_app, clock, "subscription.created", {"id": "sub_1"}, lag=301),  # a replay
        notified_app.client.post(f"/stores/paddle/{notified_app.app_id}/notifications/", content=b"{}"),
    ):
        assert response.status_code == 400 and response.json()["error_code"] == "notification_not_verified"
    assert {table: db_snapshot(runtime)[table] for table in before} == before
    refused = notified_app.admin("GET", "/store-notifications/refused/").json()["data"]
    assert len(refused) == 3 and all(row["store"] == "paddle" for row in refused)
    unconfigured = notified_app.client.post(f"/stores/paddle/{uuid.uuid4()}/notifications/", content=b"{}")
    assert unconfigured.status_code == 404


def test_junk_is_throttled_per_address_and_the_audit_log_is_bounded(notified_app, clock, monkeypatch):
    url = f"/stores/paddle/{notified_app.app_id}/notifications/"
    monkeypatch.setattr(stores_service, "REFUSED_KEPT", 5)
    answers = [notified_app.client.post(url, content=b"junk").status_code for _ in range(32)]
    assert answers == [400] * 30 + [429] * 2  # thirty a minute from one address
    listed = notified_app.admin("GET", "/store-notifications/refused/").json()
    assert len(listed["data"]) == 30 and listed["counts"] == {"refused": 32, "not_kept": 2}
    clock.advance(minutes=2)
    assert notified_app.client.post(url, content=b"junk").status_code == 400  # minutes later, logged again
    listed = notified_app.admin("GET", "/store-notifications/refused/").json()
    # The log keeps the newest five (and the last minute's): the others are counted.
    assert len(listed["data"]) == 5 and listed["counts"] == {"refused": 33, "not_kept": 28}


def test_the_customers_email_names_the_profile_when_the_app_opts_in(notified_app, clock, runtime):
    notified_app.fake.objects["subscriptions/sub_1"] = subscription()  # no customer_user_id in custom data
    notified_app.fake.objects["customers/ctm_1"] = {"id": "ctm_1", "email": "jane@example.com"}
    assert notified_app.create("jane@example.com").status_code == 200
    assert notify(notified_app, clock, "subscription.created", {"id": "sub_1"}).json() == {"status": "pending"}
    paddle_service.configure(runtime, uuid.UUID(notified_app.app_id), match_email=True)
    assert notify(notified_app, clock, "subscription.updated", {"id": "sub_1"}, "evt_2").json() == {"status": "applied"}
    assert notified_app.get("jane@example.com").json()["data"]["total_revenue_usd"] == 29.97


def test_connecting_through_the_admin_api(api, runtime):
    fake_free = {"api_key": KEY, "notification_secret": SECRET, "sandbox": True}
    connected = api.admin("PUT", "/stores/paddle/", fake_free)
    assert connected.status_code == 200, connected.text
    assert connected.json()["data"] == {
        "store": "paddle",
        "settings": {"sandbox": True},
        "secrets": ["api_key", "notification_secret"],
    }
    assert (
        api.admin("PUT", "/stores/stripe/", {"secret_key": "sk_test_1", "profile_source": "email"}).status_code == 200
    )
    listed = api.admin("GET", "/stores/").json()["data"]
    assert [(row["store"], row["secrets"]) for row in listed] == [
        ("paddle", ["api_key", "notification_secret"]),
        ("stripe", ["secret_key"]),
    ]
    assert KEY not in json.dumps(listed) and SECRET not in json.dumps(listed)  # names, never values
    refused = api.admin("PUT", "/stores/stripe/", {"profile_source": "phone"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "profile_source"


def test_a_transaction_notification_records_a_one_time_purchase(notified_app, clock):
    coins = transaction(9, total=499, subscription_id=None, items=[{"price": {"id": "pri_coins"}}])
    notified_app.fake.objects["transactions/txn_9"] = {**coins, "custom_data": {"customer_user_id": "web-user"}}
    completed = notify(notified_app, clock, "transaction.completed", {"id": "txn_9"}, "evt_9")
    assert completed.json() == {"status": "applied"}, completed.text
    [bought] = notified_app.get("web-user").json()["data"]["non_subscriptions"]
    assert (bought["store_product_id"], bought["store_transaction_id"], bought["store"]) == (
        "pri_coins",
        "txn_9",
        "paddle",
    )
    # The subscription's transactions name it: the whole subscription is read back and recorded.
    renewal = notify(notified_app, clock, "transaction.updated", {"id": "txn_2"}, "evt_10")
    assert renewal.json() == {"status": "applied"}
    assert notified_app.get("web-user").json()["data"]["total_revenue_usd"] == round(29.97 + 4.99, 2)
