"""One app's key never reaches another app's data, on any endpoint."""

import pytest
from support.api import BASE, new_app
from support.database import db_snapshot
from support.purchases import subscription
from support.receiver import Receiver


@pytest.fixture
def two_apps(runtime, client):
    owner = new_app(runtime, client, "Owner")
    product = owner.product("monthly", "premium")
    profile = owner.create("victim", custom_attributes=[{"key": "secret", "value": "x"}]).json()["data"]
    owner.set_transaction("victim", **subscription())
    paywall = owner.admin("POST", "/paywalls/", {"title": "P", "product_ids": [product["product_id"]]}).json()["data"]
    with Receiver() as receiver:
        endpoint = owner.admin("POST", "/webhooks/", {"url": receiver.url}).json()["data"]
    intruder = new_app(runtime, client, "Intruder")
    return owner, intruder, {"profile": profile, "product": product, "paywall": paywall, "endpoint": endpoint}


def test_the_intruders_key_sees_and_changes_nothing_of_the_owners(two_apps, runtime):
    owner, intruder, ids = two_apps
    pid = ids["profile"]["profile_id"]
    by_id = {"adapty-profile-id": pid}
    before = db_snapshot(runtime)
    requests = [
        ("GET", f"{BASE}/profile/", None, by_id),
        ("PATCH", f"{BASE}/profile/", {"first_name": "x"}, by_id),
        ("DELETE", f"{BASE}/profile/", None, by_id),
        ("POST", f"{BASE}/purchase/set/transaction/", subscription(store_transaction_id="t2"), by_id),
        ("POST", f"{BASE}/purchase/profile/grant/access-level/", {"access_level_id": "premium"}, by_id),
        ("POST", f"{BASE}/purchase/profile/revoke/access-level/", {"access_level_id": "premium"}, by_id),
        ("GET", f"{BASE}/paywalls/{ids['paywall']['paywall_id']}/", None, {}),
        (
            "PUT",
            f"{BASE}/paywalls/{ids['paywall']['paywall_id']}/",
            {"remote_configs": [{"locale": "en", "data": "{}"}]},
            {},
        ),
        ("GET", f"{BASE}/integration/profile/set/integration-identifiers/", None, by_id),
        ("POST", f"{BASE}/integration/profile/set/integration-identifiers/", {"appsflyer_id": "x"}, by_id),
        ("GET", f"{BASE}/purchase/profile/refund-saver/settings/", None, by_id),
        ("POST", f"{BASE}/purchase/profile/refund-saver/settings/", {"consent": False}, by_id),
        ("GET", f"/api/v1/sdk/profiles/{pid}/", None, {}),
        ("PATCH", f"/api/v1/sdk/profiles/{pid}/", {"email": "x@example.com"}, {}),
        ("DELETE", f"/api/v1/sdk/profiles/{pid}/delete/", None, {}),
        ("POST", f"/api/v1/sdk/profiles/{pid}/paid-access-levels/premium/grant/", {"is_lifetime": True}, {}),
        ("DELETE", f"/api/admin/v1/products/{ids['product']['product_id']}/", None, {}),
        ("PATCH", f"/api/admin/v1/paywalls/{ids['paywall']['paywall_id']}/", {"state": "archived"}, {}),
        ("DELETE", f"/api/admin/v1/webhooks/{ids['endpoint']['endpoint_id']}/", None, {}),
        ("DELETE", "/api/admin/v1/access-levels/premium/", None, {}),
    ]
    for method, path, body, headers in requests:
        response = intruder.client.request(method, path, json=body, headers={**intruder.headers(), **headers})
        assert response.status_code in (400, 404), (method, path, response.status_code)
        assert db_snapshot(runtime) == before, (method, path)

    listings = [
        "/api/admin/v1/events/",
        "/api/admin/v1/deliveries/",
        "/api/admin/v1/products/",
        "/api/admin/v1/webhooks/",
        "/api/admin/v1/paywalls/",
        f"{BASE}/paywalls/",
    ]
    for path in listings:
        body = intruder.client.get(path, headers=intruder.headers()).json()
        assert body.get("data", body.get("results")) == [], path
    feed = intruder.client.get("/api/admin/v1/events/", params={"profile_id": pid}, headers=intruder.headers())
    assert feed.json()["data"] == []
    replay = intruder.client.post("/api/admin/v1/deliveries/replay/", json={}, headers=intruder.headers())
    assert replay.json()["data"]["replayed"] == 0
    assert owner.get("victim").json()["data"]["profile_id"] == pid
