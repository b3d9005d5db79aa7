"""The reference's own request examples, sent as its document gives them (transaction ids made
fresh), answer 2xx with bodies its schemas accept; its documented errors too. On both engines."""

import json
import uuid

import pytest
from support import contract
from support.api import BASE
from support.fake_stripe import KEY, FakeStripe, invoice, subscription

from subledger.stores.stripe import service as stripe_service


def ok(response, schema: dict, status: int = 200):
    assert response.status_code == status, response.text
    contract.check(schema, response.json())
    return response.json()


def refused(response, status: int, schema: dict = contract.ERROR_RESPONSE) -> dict:
    assert response.status_code == status, response.text
    contract.check(schema, response.json())
    return response.json()


def test_profile_examples(api):
    ok(api.create("jane.doe@example.com", **contract.CREATE_PROFILE), contract.PROFILE_RESPONSE)
    ok(api.create("jane.doe@example.com", **contract.PROFILE_REQUEST), contract.PROFILE_RESPONSE)
    ok(api.get("jane.doe@example.com"), contract.PROFILE_RESPONSE)
    ok(api.patch("jane.doe@example.com", **contract.PROFILE_REQUEST), contract.PROFILE_RESPONSE)
    assert api.delete("jane.doe@example.com").status_code == 204
    refused(api.get("jane.doe@example.com"), 404)
    refused(api.client.get(BASE + "/profile/", headers={"adapty-customer-user-id": "x"}), 401)


def test_set_transaction_examples(api):
    api.create("buyer")
    for example in (contract.ONE_TIME_PURCHASE, contract.SUBSCRIPTION_PURCHASE):
        fresh = str(uuid.uuid4().int)[:16]
        body = {**example, "store_transaction_id": fresh, "store_original_transaction_id": fresh}
        profile = ok(api.set_transaction("buyer", **body), contract.PROFILE_RESPONSE)["data"]
    assert {item["store_product_id"] for item in profile["non_subscriptions"]} == {"premium_lifetime"}
    assert [item["store_product_id"] for item in profile["subscriptions"]] == ["premium_monthly"]
    too_long = {**contract.ONE_TIME_PURCHASE, "store_transaction_id": "1" * 51}
    refused(api.set_transaction("buyer", **too_long), 400)


def test_grant_and_revoke_examples_on_a_new_app(api):
    api.create("granted")
    for example in contract.GRANTS:
        ok(api.grant("granted", **example), contract.PROFILE_RESPONSE)
    for example in contract.REVOKES:
        ok(api.revoke("granted", **example), contract.PROFILE_RESPONSE)
    refused(api.grant("granted", access_level_id="platinum"), 400)


def test_refund_saver_examples(api):
    api.create("u")
    path = BASE + "/purchase/profile/refund-saver/settings/"
    ok(api.client.get(path, headers=api.headers("u")), contract.REFUND_SAVER_SETTINGS_RESPONSE)
    changed = api.client.post(path, json=contract.REFUND_SAVER_SETTINGS, headers=api.headers("u"))
    assert ok(changed, contract.REFUND_SAVER_SETTINGS_RESPONSE)["settings"] == contract.REFUND_SAVER_SETTINGS
    refused(api.client.post(path, json={}, headers=api.headers("u")), 400)
    refused(api.client.get(path, headers=api.headers("nobody")), 400)


def test_integration_identifiers_examples(api):
    api.create("u")
    path = BASE + "/integration/profile/set/integration-identifiers/"
    response = api.client.post(path, json=contract.INTEGRATION_IDENTIFIERS, headers=api.headers("u"))
    assert (response.status_code, response.content) == (200, b"")
    got = ok(api.client.get(path, headers=api.headers("u")), contract.INTEGRATION_IDS_RESPONSE)
    assert got == contract.INTEGRATION_IDENTIFIERS
    refused(api.client.post(path, json={}, headers=api.headers("u")), 400)
    refused(api.client.get(path, headers=api.headers("nobody")), 404)


def test_paywall_examples(api, clock):
    product = api.product("premium_monthly", "premium", "P1M", title="Premium Monthly")
    for title in ("LlkTlizT", "Premium Subscription"):
        made = api.admin("POST", "/paywalls/", {"title": title, "product_ids": [product["product_id"]]})
        assert made.status_code == 201
        clock.advance(seconds=1)
    listed = ok(api.client.get(f"{BASE}/paywalls/", headers=api.headers()), contract.PAYWALL_LIST_RESPONSE)
    paywall_id = listed["data"][1]["paywall_id"]
    ok(api.client.get(f"{BASE}/paywalls/{paywall_id}/", headers=api.headers()), contract.PAYWALL_RESPONSE)
    put = api.client.put(f"{BASE}/paywalls/{paywall_id}/", json=contract.PAYWALL_UPDATE, headers=api.headers())
    assert ok(put, contract.PAYWALL_RESPONSE)["remote_configs"] == contract.PAYWALL_UPDATE["remote_configs"]
    refused(api.client.get(f"{BASE}/paywalls/", params={"page[size]": 101}, headers=api.headers()), 400)
    refused(api.client.get(f"{BASE}/paywalls/{uuid.uuid4()}/", headers=api.headers()), 404)


def test_virtual_currency_examples(api):
    assert api.admin("PATCH", "/virtual-currencies/", {"enabled": True}).status_code == 200
    for code in ("COINS", "GOLD", "SILVER"):
        assert api.admin("POST", "/virtual-currencies/currencies/", {"code": code, "name": code}).status_code == 201
    api.create("jane.doe@example.com")
    # Enough of each for the debits, then the document's examples in its order.
    stock = {"items": [{"currency_code": c, "amount": 1000} for c in ("COINS", "GOLD", "SILVER")]}
    ok(api.request("POST", "/vc/transactions/", "jane.doe@example.com", json=stock), contract.VC_TRANSACTION_RESPONSE)
    for example in contract.VC_TRANSACTIONS:
        answer = api.request(
            "POST",
            "/vc/transactions/",
            "jane.doe@example.com",
            json=example,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        ok(answer, contract.VC_TRANSACTION_RESPONSE)
    ok(api.request("GET", "/vc/transactions/", "jane.doe@example.com"), contract.VC_HISTORY_RESPONSE)
    ok(api.request("GET", "/vc/balances/", "jane.doe@example.com"), contract.VC_BALANCES_RESPONSE)
    overdrawn = {"items": [{"currency_code": "COINS", "amount": -(10**6)}]}
    refused(api.request("POST", "/vc/transactions/", "jane.doe@example.com", json=overdrawn), 400)


def test_stripe_validation_example(api, runtime):
    """The example's placeholder token is refused in the documented error shape; a real one is
    imported and answered as the example's answer is."""
    url = "/api/v1/sdk/purchase/stripe/token/validate/"
    headers = {**api.headers(), "Content-Type": "application/vnd.api+json"}
    with FakeStripe(KEY) as fake:
        runtime.settings.stripe_api_base = fake.url
        stripe_service.configure(runtime, uuid.UUID(api.app_id), secret_key=KEY)
        placeholder = api.client.post(url, content=json.dumps(contract.STRIPE_VALIDATION), headers=headers)
        refused(placeholder, 400, contract.STRIPE_ERROR_RESPONSE)
        fake.objects["subscriptions/sub_1"] = subscription()
        fake.invoices["sub_1"] = [invoice(0)]
        real = {
            "data": {
                **contract.STRIPE_VALIDATION["data"],
                "attributes": {"customer_user_id": "u", "stripe_token": "sub_1"},
            }
        }
        answer = ok(
            api.client.post(url, content=json.dumps(real), headers=headers), contract.STRIPE_VALIDATION_RESPONSE
        )
    assert answer == {"data": None}


@pytest.mark.parametrize("schema", [contract.PROFILE_RESPONSE, contract.PAYWALL_RESPONSE, contract.ERROR_RESPONSE])
def test_the_schemas_refuse_what_they_should(schema):
    """The checks above can fail: a body missing what the contract requires does."""
    with pytest.raises(AssertionError):
        contract.check(schema, {})


def test_date_times_are_read_as_rfc_3339():
    levels = {"type": "array", "items": contract.ACCESS_LEVEL}
    with pytest.raises(AssertionError, match="date-time"):
        contract.check(levels, [{"purchased_at": "2025-01-01T10:00:00.000000+0000"}])
    contract.check(levels, [{"purchased_at": "2025-01-01T10:00:00.000000+00:00"}])
