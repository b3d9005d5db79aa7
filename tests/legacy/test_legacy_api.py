"""The legacy API v1 over the same ledger as v2."""

import base64
from urllib.parse import quote

import pytest
from support.database import db_snapshot
from support.purchases import subscription

# Date-times as the ledger keeps them, and v1 and webhooks answer them.
T0 = "2025-01-01T10:00:00.000000+0000"
T1 = "2025-02-01T10:00:00.000000+0000"

V1 = "/api/v1/sdk"
ODD_ID = "jürgen/ñ?+ 東京 a&b#c%"


@pytest.fixture
def shop(api, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = clock.current.replace(year=2025, month=1, day=15)
    return api


def v1(api, method: str, path: str, json=None, params=None):
    return api.client.request(method, V1 + path, json=json, params=params, headers=api.headers())


def data(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def b64(text: str, padded: bool = True) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


def test_create_get_update_delete(shop):
    created = data(
        v1(
            shop,
            "POST",
            "/profiles/",
            {
                "customer_user_id": "old-school",
                "email": "o@example.com",
                "birthday": "1990-05-17",
                "ip_country": "de",
                "custom_attributes": {"level": 3, "plan": "gold"},
            },
        )
    )
    assert list(created) == [
        "app_id",
        "profile_id",
        "customer_user_id",
        "total_revenue_usd",
        "paid_access_levels",
        "subscriptions",
        "non_subscriptions",
        "custom_attributes",
    ]
    assert created["customer_user_id"] == "old-school" and created["paid_access_levels"] == {}
    assert created["total_revenue_usd"] == 0.0
    assert created["subscriptions"] == {} and created["non_subscriptions"] is None
    assert created["custom_attributes"] == {"level": 3.0, "plan": "gold"}

    updated = data(v1(shop, "PATCH", "/profiles/old-school/", {"custom_attributes": {"plan": None, "x": "y"}}))
    assert updated["custom_attributes"] == {"level": 3.0, "x": "y"}
    by_id = data(v1(shop, "GET", f"/profiles/{created['profile_id']}/"))
    assert by_id["profile_id"] == created["profile_id"]
    assert shop.patch("old-school", att_status=2).status_code == 200
    extended = data(v1(shop, "GET", "/profiles/old-school/", params={"extended": ""}))
    assert extended["att_status"] == 2
    assert extended["email"] == "o@example.com" and extended["created_at"] and "appsflyer_id" in extended
    assert extended["birthday"] == "1990-05-17"
    assert "email" not in by_id

    assert v1(shop, "DELETE", "/profiles/old-school/delete").status_code == 204
    assert v1(shop, "GET", "/profiles/old-school/").status_code == 404
    v1(shop, "POST", "/profiles/", {"customer_user_id": "again"})
    assert v1(shop, "DELETE", "/profiles/again/delete/").status_code == 204


def test_v1_validation(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "u"})
    too_many = {f"k{i}": i for i in range(11)}
    response = v1(shop, "PATCH", "/profiles/u/", {"custom_attributes": too_many})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "custom_attributes"
    assert v1(shop, "POST", "/profiles/", {"email": "x@example.com"}).status_code == 400
    assert v1(shop, "PATCH", "/profiles/u/", {"gender": "q"}).json()["error_code"] == "invalid_enumeration_member"
    grant = v1(shop, "POST", "/profiles/u/paid-access-levels/premium/grant/", {"starts_at": T0})
    assert grant.status_code == 400 and grant.json()["error_code"] == "value_error"
    revoke = v1(shop, "POST", "/profiles/u/paid-access-levels/premium/revoke/", {})
    assert revoke.status_code == 400 and revoke.json()["errors"][0]["source"] == "is_refund"


def test_odd_customer_user_ids_work_percent_encoded_and_in_base64url(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": ODD_ID})
    plain = data(v1(shop, "GET", f"/profiles/{quote(ODD_ID, safe='')}/"))
    assert plain["customer_user_id"] == ODD_ID
    for padded in (True, False):
        encoded = data(
            v1(shop, "GET", f"/profiles/{b64(ODD_ID, padded)}/", params={"is_user_id_base64url_encoded": "1"})
        )
        assert encoded["profile_id"] == plain["profile_id"]
    granted = data(
        v1(shop, "POST", f"/profiles/{quote(ODD_ID, safe='')}/paid-access-levels/premium/grant/", {"is_lifetime": True})
    )
    assert granted["paid_access_levels"]["premium"]["is_lifetime"] is True
    bad = v1(shop, "GET", "/profiles/%%%/", params={"is_user_id_base64url_encoded": "1"})
    assert bad.status_code == 400
    not_utf8 = base64.urlsafe_b64encode(b"\xff\xfe").decode()
    assert v1(shop, "GET", f"/profiles/{not_utf8}/", params={"is_user_id_base64url_encoded": "1"}).status_code == 400


def test_grant_by_expiry_duration_or_lifetime(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "g"})
    level = data(v1(shop, "POST", "/profiles/g/paid-access-levels/premium/grant/", {"duration_days": 10}))[
        "paid_access_levels"
    ]["premium"]
    assert level["expires_at"] == "2025-01-25T12:00:00.000000+0000" and level["is_active"] is True
    assert level["vendor_product_id"] == "adapty_server_side_product" and level["store"] == "adapty"
    extended = data(v1(shop, "POST", "/profiles/g/paid-access-levels/premium/grant/", {"duration_days": 5}))[
        "paid_access_levels"
    ]["premium"]
    assert extended["expires_at"] == "2025-01-30T12:00:00.000000+0000"  # added to the current expiry
    fixed = data(
        v1(
            shop,
            "POST",
            "/profiles/g/paid-access-levels/premium/grant/",
            {"expires_at": "2026-01-01T00:00:00Z", "duration_days": 1},
        )
    )["paid_access_levels"]["premium"]
    assert fixed["expires_at"] == "2026-01-01T00:00:00.000000+0000"
    lifetime = data(
        v1(
            shop,
            "POST",
            "/profiles/g/paid-access-levels/premium/grant/",
            {"is_lifetime": True, "expires_at": "2026-01-01T00:00:00Z"},
        )
    )["paid_access_levels"]["premium"]
    assert lifetime["is_lifetime"] is True and lifetime["expires_at"] is None


def test_is_lifetime_wins_over_a_zero_or_null_duration(shop, runtime):
    """What open-source v1 clients send: every field, with 0 or null for those not meant."""
    v1(shop, "POST", "/profiles/", {"customer_user_id": "z"})
    body = {"is_lifetime": True, "duration_days": 0, "expires_at": None}
    level = data(v1(shop, "POST", "/profiles/z/paid-access-levels/premium/grant/", body))["paid_access_levels"]
    assert level["premium"]["is_lifetime"] is True
    before = db_snapshot(runtime)
    for nothing in ({"duration_days": 0}, {"is_lifetime": False, "duration_days": 0, "expires_at": None}):
        refused = v1(shop, "POST", "/profiles/z/paid-access-levels/premium/grant/", nothing)
        assert refused.status_code == 400 and refused.json()["error_code"] == "value_error"
    assert db_snapshot(runtime) == before


def test_a_v1_trial_purchase_may_carry_a_price(shop):
    """v1 has no trial price rule: the price is the product's, and a trial brings in nothing."""
    v1(shop, "POST", "/profiles/", {"customer_user_id": "t"})
    body = {
        "duration_days": 7,
        "vendor_product_id": "promo",
        "vendor_transaction_id": "trial-1",
        "store": "app_store",
        "introductory_offer_type": "free_trial",
        "price": 4.99,
    }
    granted = v1(shop, "POST", "/profiles/t/paid-access-levels/premium/grant/", body)
    assert granted.status_code == 200, granted.text
    assert data(granted)["total_revenue_usd"] == 0.0
    assert data(shop.get("t"))["non_subscriptions"][0]["store_transaction_id"] == "trial-1"


def test_revoking_a_level_that_has_ended_changes_nothing(shop, runtime, clock):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "ended"})
    v1(shop, "POST", "/profiles/ended/paid-access-levels/premium/grant/", {"duration_days": 1})
    clock.advance(days=2)
    before = db_snapshot(runtime)
    for is_refund in (False, True):
        revoked = v1(shop, "POST", "/profiles/ended/paid-access-levels/premium/revoke/", {"is_refund": is_refund})
        assert revoked.status_code == 200, revoked.text
        assert data(revoked)["paid_access_levels"]["premium"]["is_active"] is False
    assert db_snapshot(runtime) == before


def test_a_grant_extended_past_the_calendar_is_refused_and_changes_nothing(shop, runtime):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "far"})
    assert shop.grant("far", access_level_id="premium", expires_at="2999-12-30T00:00:00Z").status_code == 200
    century = {"duration_days": 36500}
    for _ in range(80):  # each extension adds 36,500 days: past the year 9999 within 80
        before = db_snapshot(runtime)
        response = v1(shop, "POST", "/profiles/far/paid-access-levels/premium/grant/", century)
        if response.status_code != 200:
            break
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "duration_days"
    assert db_snapshot(runtime) == before


def test_a_grant_with_a_purchase_is_recorded_once_and_a_refunding_revoke_zeroes_it(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "p"})
    body = {
        "duration_days": 30,
        "vendor_product_id": "promo",
        "vendor_transaction_id": "v-1",
        "store": "app_store",
        "price": 4.99,
        "price_locale": "USD",
    }
    for _ in range(2):
        assert v1(shop, "POST", "/profiles/p/paid-access-levels/premium/grant/", body).status_code == 200
    profile = data(shop.get("p"))
    assert profile["total_revenue_usd"] == 4.99
    assert [item["store_transaction_id"] for item in profile["non_subscriptions"]] == ["v-1"]
    level = profile["access_levels"][0]
    assert (level["store"], level["store_product_id"], level["store_transaction_id"]) == ("app_store", "promo", "v-1")

    revoked = data(v1(shop, "POST", "/profiles/p/paid-access-levels/premium/revoke/", {"is_refund": True}))
    level = revoked["paid_access_levels"]["premium"]
    assert level["is_active"] is False and level["unsubscribed_at"] == "2025-01-15T12:00:00.000000+0000"
    assert revoked["non_subscriptions"]["promo"][0]["is_refund"] is True
    assert data(shop.get("p"))["total_revenue_usd"] == 0.0


def test_one_profile_driven_through_both_versions(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "both", "custom_attributes": {"level": 1}})
    shop.set_transaction("both", **subscription())
    seen_by_v1 = data(v1(shop, "GET", "/profiles/both/"))
    sub = seen_by_v1["subscriptions"]["monthly"]
    assert sub["id"] == "premium" and sub["will_renew"] is True and sub["is_sandbox"] is False
    assert sub["expires_at"] == T1 and sub["activated_at"] == T0
    assert seen_by_v1["paid_access_levels"]["premium"]["vendor_transaction_id"] == "tx-1"

    shop.access_level("pro")
    v1(shop, "POST", "/profiles/both/paid-access-levels/pro/grant/", {"is_lifetime": True})
    v2 = data(shop.get("both"))
    assert [level["access_level_id"] for level in v2["access_levels"]] == ["premium", "pro"]
    assert v2["custom_attributes"] == [{"key": "level", "value": 1.0}]

    events = shop.client.get("/api/admin/v1/events/", headers=shop.headers()).json()["data"]
    assert [e["event_type"] for e in events][-1] == "access_level_updated"
    assert events[-1]["payload"]["event_properties"]["access_level_id"] == "pro"


def test_unknown_level_and_unknown_profile(shop):
    v1(shop, "POST", "/profiles/", {"customer_user_id": "u"})
    unknown = v1(shop, "POST", "/profiles/u/paid-access-levels/gold/grant/", {"is_lifetime": True})
    assert unknown.json()["error_code"] == "paid_access_level_does_not_exist"
    lacking = v1(shop, "POST", "/profiles/u/paid-access-levels/premium/revoke/", {"is_refund": False})
    assert lacking.json()["error_code"] == "profile_paid_access_level_does_not_exist"
    assert v1(shop, "GET", "/profiles/nobody/").status_code == 404
