"""v1 `purchase/stripe/token/validate/`: the real Stripe client against a stand-in on loopback."""

import json
import uuid

import pytest
from support.database import db_snapshot
from support.fake_stripe import KEY, START, FakeStripe, invoice, payment_intent, subscription

from subledger.stores.stripe import service as stripe_service

URL = "/api/v1/sdk/purchase/stripe/token/validate/"


@pytest.fixture
def stripe_app(api, runtime, clock):
    api.product("price_monthly", "premium", "P1M", store="stripe")
    clock.current = clock.current.replace(year=2025, month=2, day=15)
    with FakeStripe(KEY) as fake:
        runtime.settings.stripe_api_base = fake.url
        stripe_service.configure(runtime, uuid.UUID(api.app_id), secret_key=KEY)
        fake.objects["subscriptions/sub_1"] = subscription()
        fake.invoices["sub_1"] = [invoice(n) for n in (1, 0)]
        fake.objects["payment_intents/pi_1"] = payment_intent(amount=1999, metadata={"product_id": "coins"})
        api.fake = fake
        yield api


def validate(api, customer_user_id: str, token: str, content_type: str = "application/vnd.api+json"):
    body = {
        "data": {
            "type": "stripe_receipt_validation_result",
            "attributes": {"customer_user_id": customer_user_id, "stripe_token": token},
        }
    }
    return api.client.post(
        URL, content=json.dumps(body).encode(), headers={**api.headers(), "Content-Type": content_type}
    )


def v1_profile(api, customer_user_id: str) -> dict:
    return api.client.get(f"/api/v1/sdk/profiles/{customer_user_id}/", headers=api.headers()).json()["data"]


def test_a_subscription_and_its_history_are_imported_for_a_new_profile(stripe_app):
    response = validate(stripe_app, "stripe-user", "sub_1")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": None}
    assert response.headers["content-type"] == "application/vnd.api+json"
    profile = v1_profile(stripe_app, "stripe-user")
    assert profile["customer_user_id"] == "stripe-user"
    sub = profile["subscriptions"]["price_monthly"]
    assert sub["vendor_transaction_id"] == "in_1" and sub["vendor_original_transaction_id"] == "sub_1"
    assert sub["store"] == "stripe" and sub["is_sandbox"] is True and sub["will_renew"] is True
    assert sub["expires_at"] == "2025-03-02T00:00:00.000000+0000"
    assert profile["paid_access_levels"]["premium"]["is_active"] is True
    v2 = stripe_app.get("stripe-user").json()["data"]
    assert v2["total_revenue_usd"] == round(2 * 9.99 * 1.0389, 2)
    assert validate(stripe_app, "stripe-user", "sub_1").status_code == 200  # again: nothing doubles
    assert stripe_app.get("stripe-user").json()["data"]["total_revenue_usd"] == v2["total_revenue_usd"]
    assert all(path.startswith("/v1/") for path in stripe_app.fake.requests)


def test_a_payment_intent_is_a_one_time_purchase(stripe_app):
    stripe_app.create("buyer")
    assert validate(stripe_app, "buyer", "pi_1", content_type="application/json").status_code == 200
    profile = v1_profile(stripe_app, "buyer")
    [purchase] = profile["non_subscriptions"]["coins"]
    assert purchase["vendor_transaction_id"] == "pi_1" and purchase["is_sandbox"] is False
    assert stripe_app.get("buyer").json()["data"]["total_revenue_usd"] == 19.99


def json_api_error(response, pointer: str) -> str:
    """The one error of a JSON:API error answer at ``pointer``: its detail."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/vnd.api+json"
    [error] = response.json()["errors"]
    assert (error["source"], error["status"]) == ({"pointer": pointer}, "400")
    return error["detail"]


def test_unknown_tokens_and_missing_configuration(stripe_app, runtime):
    before = db_snapshot(runtime)
    json_api_error(validate(stripe_app, "u", "sub_missing"), "/data/attributes/stripe_token")
    json_api_error(validate(stripe_app, "u", "cus_123"), "/data/attributes/stripe_token")
    bad_body = stripe_app.client.post(URL, json={"data": {"type": "other"}}, headers=stripe_app.headers())
    assert bad_body.status_code == 400 and bad_body.json()["errors"][0]["source"]["pointer"] == "/data/type"
    null_token = {"data": {"type": "stripe_receipt_validation_result", "attributes": {"customer_user_id": "u"}}}
    null_token["data"]["attributes"]["stripe_token"] = None
    json_api_error(
        stripe_app.client.post(URL, json=null_token, headers=stripe_app.headers()), "/data/attributes/stripe_token"
    )
    not_json = stripe_app.client.post(URL, content=b"{", headers=stripe_app.headers())
    assert json_api_error(not_json, "/data").startswith("JSON parse error")
    assert db_snapshot(runtime) == before  # no profile was created for a refused token
    stripe_service.configure(runtime, uuid.UUID(stripe_app.app_id), secret_key="sk_test_wrong")
    assert "refused" in json_api_error(validate(stripe_app, "u", "sub_1"), "/data")
    stripe_service.configure(runtime, uuid.UUID(stripe_app.app_id), secret_key="")
    assert "not configured" in json_api_error(validate(stripe_app, "u", "sub_1"), "/data")


def test_long_histories_are_read_page_by_page(stripe_app):
    stripe_app.fake.invoices["sub_1"] = [invoice(n, amount=500) for n in reversed(range(120))]
    stripe_app.fake.objects["subscriptions/sub_1"]["start_date"] = START
    assert validate(stripe_app, "long", "sub_1").status_code == 200
    profile = v1_profile(stripe_app, "long")
    assert profile["subscriptions"]["price_monthly"]["vendor_transaction_id"] == "in_119"
    assert any("starting_after" in path for path in stripe_app.fake.requests)
