"""Set transaction, grant and revoke through HTTP, and the profile they derive."""

import uuid
from datetime import timedelta

import pytest
from support.database import db_snapshot
from support.purchases import T0, T1, T2, one_time, subscription

from subledger.catalog.rules import MAX_TRANSACTION_USD
from subledger.purchases import repricing, verification


@pytest.fixture
def shop(api, clock):
    """An app selling premium monthly and lifetime, coins, and a profile `u` on 2025-01-15."""
    api.product("monthly", "premium", "P1M")
    api.product("lifetime", "premium", "lifetime")
    api.product("coins", None, "lifetime", is_consumable=True)
    assert api.create("u").status_code == 200
    clock.current = clock.current.replace(year=2025, month=1, day=15)
    return api


def data(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_subscription_unlocks_its_access_level(shop):
    profile = data(shop.set_transaction("u", **subscription()))
    [level] = profile["access_levels"]
    assert list(level) == [
        "access_level_id",
        "store",
        "store_product_id",
        "store_base_plan_id",
        "store_transaction_id",
        "store_original_transaction_id",
        "offer",
        "environment",
        "starts_at",
        "purchased_at",
        "originally_purchased_at",
        "expires_at",
        "renewal_cancelled_at",
        "billing_issue_detected_at",
        "is_in_grace_period",
        "cancellation_reason",
    ]
    assert level["access_level_id"] == "premium" and level["store"] == "app_store"
    assert level["store_transaction_id"] == "tx-1" and level["store_original_transaction_id"] == "orig-1"
    assert (level["starts_at"], level["expires_at"]) == (T0, T1)
    assert level["renewal_cancelled_at"] is None and level["is_in_grace_period"] is False
    [sub] = profile["subscriptions"]
    assert list(sub) == [
        "purchase_id",
        "purchase_type",
        "store",
        "environment",
        "store_product_id",
        "store_base_plan_id",
        "store_transaction_id",
        "store_original_transaction_id",
        "offer",
        "is_family_shared",
        "price",
        "purchased_at",
        "refunded_at",
        "cancellation_reason",
        "variation_id",
        "originally_purchased_at",
        "expires_at",
        "renew_status",
        "renew_status_changed_at",
        "billing_issue_detected_at",
        "is_in_grace_period",
        "grace_period_expires_at",
    ]
    assert uuid.UUID(sub["purchase_id"]) and sub["purchase_type"] == "subscription"
    assert sub["price"] == {"country": "US", "currency": "USD", "value": 9.99}
    assert profile["non_subscriptions"] == []
    assert profile["total_revenue_usd"] == 9.99
    fetched = data(shop.get("u"))
    assert fetched | {"timestamp": 0} == profile | {"timestamp": 0}
    assert list(fetched["access_levels"][0]) == list(level)  # the stored state keeps the order too
    assert list(fetched["subscriptions"][0]) == list(sub)


def test_renewals_extend_the_chain_and_add_revenue(shop):
    shop.set_transaction("u", **subscription())
    profile = data(
        shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
    )
    [sub] = profile["subscriptions"]
    assert sub["store_transaction_id"] == "tx-2" and sub["originally_purchased_at"] == T0
    assert sub["expires_at"] == T2
    [level] = profile["access_levels"]
    assert level["expires_at"] == T2 and level["originally_purchased_at"] == T0
    assert profile["total_revenue_usd"] == 19.98


def test_resending_a_transaction_changes_nothing(shop, runtime):
    first = data(shop.set_transaction("u", **subscription()))
    before = db_snapshot(runtime)
    again = data(shop.set_transaction("u", **subscription()))
    assert again | {"timestamp": 0} == first | {"timestamp": 0}
    after = db_snapshot(runtime)
    assert after["transactions"] == before["transactions"]
    assert len(after["transactions"]) == 1


def test_a_refund_ends_access_at_the_refund_time_and_removes_revenue(shop):
    shop.set_transaction("u", **subscription())
    refunded_at = "2025-01-10T00:00:00.000000+00:00"
    profile = data(
        shop.set_transaction(
            "u", **subscription(refunded_at=refunded_at, cancellation_reason="refund", renew_status=False)
        )
    )
    [level] = profile["access_levels"]
    assert level["expires_at"] == refunded_at and level["cancellation_reason"] == "refund"
    assert profile["subscriptions"][0]["refunded_at"] == refunded_at
    assert profile["total_revenue_usd"] == 0.0


def test_turning_renewal_off_records_when(shop):
    shop.set_transaction("u", **subscription())
    changed = "2025-01-05T08:00:00.000000+00:00"
    profile = data(
        shop.set_transaction(
            "u",
            **subscription(
                renew_status=False, renew_status_changed_at=changed, cancellation_reason="voluntarily_cancelled"
            ),
        )
    )
    [level] = profile["access_levels"]
    assert level["renewal_cancelled_at"] == changed and level["expires_at"] == T1
    assert level["cancellation_reason"] == "voluntarily_cancelled"
    assert profile["subscriptions"][0]["renew_status"] is False


def test_a_grace_period_keeps_access_until_it_ends(shop, clock):
    billing = "2025-02-01T10:00:00.000000+00:00"
    grace_end = "2025-02-08T10:00:00.000000+00:00"
    shop.set_transaction("u", **subscription(billing_issue_detected_at=billing, grace_period_expires_at=grace_end))
    clock.current = clock.current.replace(month=2, day=3)
    profile = data(shop.get("u"))
    assert profile["access_levels"][0]["is_in_grace_period"] is True
    assert profile["subscriptions"][0]["is_in_grace_period"] is True
    assert profile["access_levels"][0]["billing_issue_detected_at"] == billing
    clock.current = clock.current.replace(month=2, day=8, hour=10) + timedelta(microseconds=1)
    profile = data(shop.get("u"))
    assert profile["access_levels"][0]["is_in_grace_period"] is False
    assert profile["subscriptions"][0]["is_in_grace_period"] is False


def test_one_time_purchases_lifetime_and_consumable(shop):
    profile = data(shop.set_transaction("u", **one_time()))
    [level] = profile["access_levels"]
    assert level["expires_at"] is None and level["store_product_id"] == "lifetime"
    profile = data(
        shop.set_transaction(
            "u",
            **one_time(
                store_product_id="coins",
                store_transaction_id="c-1",
                store_original_transaction_id="c-1",
                purchased_at=T1,
                price={"country": "DE", "currency": "EUR", "value": 1.99},
            ),
        )
    )
    purchases = profile["non_subscriptions"]
    assert [p["store_product_id"] for p in purchases] == ["lifetime", "coins"]
    assert list(purchases[0]) == [
        "purchase_id",
        "store",
        "store_product_id",
        "store_base_plan_id",
        "store_transaction_id",
        "store_original_transaction_id",
        "purchased_at",
        "environment",
        "is_refund",
        "is_consumable",
    ]
    assert [p["is_consumable"] for p in purchases] == [False, True]
    assert [p["is_refund"] for p in purchases] == [False, False]
    # 49.99 USD + 1.99 EUR at the shipped rate (1.0389 USD per EUR) = 49.99 + 2.067411
    assert profile["total_revenue_usd"] == 52.06


def test_a_one_time_purchase_of_a_period_product_expires_after_it(shop):
    shop.product("season_pass", "premium", "P3M")
    profile = data(shop.set_transaction("u", **one_time(store_product_id="season_pass")))
    assert profile["access_levels"][0]["expires_at"] == "2025-04-01T10:00:00.000000+00:00"


def test_a_transaction_of_an_unconfigured_product_is_kept_without_access(shop):
    profile = data(shop.set_transaction("u", **subscription(store_product_id="unknown")))
    assert profile["access_levels"] == []
    assert len(profile["subscriptions"]) == 1 and profile["total_revenue_usd"] == 9.99


def test_configuring_the_product_later_unlocks_past_purchases(shop):
    shop.set_transaction("u", **subscription(store_product_id="yearly"))
    shop.product("yearly", "premium", "P1Y")
    assert [level["store_product_id"] for level in data(shop.get("u"))["access_levels"]] == ["yearly"]


def test_products_mapping_to_one_level_combine_to_the_furthest_reach(shop):
    shop.product("weekly", "premium", "P1W")
    shop.set_transaction("u", **subscription())
    profile = data(
        shop.set_transaction(
            "u",
            **subscription(
                store_product_id="weekly",
                store_transaction_id="w-1",
                store_original_transaction_id="w-orig",
                purchased_at=T0,
                expires_at=T2,
            ),
        )
    )
    [level] = profile["access_levels"]
    assert level["store_product_id"] == "weekly" and level["expires_at"] == T2
    assert len(profile["subscriptions"]) == 2


def test_a_transaction_id_of_another_profile_is_refused(shop, runtime):
    shop.set_transaction("u", **subscription())
    shop.create("v")
    before = db_snapshot(runtime)
    response = shop.set_transaction("v", **subscription())
    assert response.status_code == 400
    assert response.json()["error_code"] == "store_transaction_id_error"
    assert db_snapshot(runtime) == before


def test_set_transaction_for_an_unknown_profile_is_404(shop):
    assert shop.set_transaction("nobody", **subscription()).status_code == 404


def test_sandbox_is_kept_apart(shop):
    profile = data(shop.set_transaction("u", **subscription(environment="Sandbox")))
    assert profile["access_levels"][0]["environment"] == "Sandbox"
    assert profile["subscriptions"][0]["environment"] == "Sandbox"


def test_a_currency_without_a_rate_is_refused_and_a_loaded_rate_is_used(shop, runtime):
    price = {"country": "IS", "currency": "ISK", "value": 1000}
    response = shop.set_transaction("u", **one_time(price=price))
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "price.currency"
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nISK,0.0072,2025-01-01\n")
    assert data(shop.set_transaction("u", **one_time(price=price)))["total_revenue_usd"] == 7.2


def test_rates_and_prices_stay_within_what_the_ledger_can_add_up(shop, runtime):
    """A transaction may be worth at most MAX_TRANSACTION_USD; rates that would take one
    already recorded past it, or that no column could hold, are refused and nothing loads."""
    too_dear = {"country": "US", "currency": "USD", "value": int(MAX_TRANSACTION_USD) + 1}
    refused = shop.set_transaction("u", **one_time(price=too_dear))
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "price.value"
    dear = {"country": "IS", "currency": "ISK", "value": 1_000_000_000}
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nISK,0.0072,2025-01-01\n")
    assert data(shop.set_transaction("u", **one_time(price=dear)))["total_revenue_usd"] == 7_200_000
    before = db_snapshot(runtime)
    for rate in ("0.011", "1e400", "1e-12", "1." + "1" * 40):
        with pytest.raises(ValueError):
            repricing.load_rates(runtime, f"currency,usd_per_unit,as_of\nISK,{rate},2025-02-01\n")
    assert db_snapshot(runtime) == before


def test_a_free_trial_sent_at_the_subscriptions_price_brings_in_nothing(shop, runtime):
    """The contract's own example sends a free trial with the price of the subscription after it."""
    trial_offer = {"category": "introductory", "type": "free_trial", "id": "trial_offer_123"}
    trial = data(
        shop.set_transaction(
            "u", **subscription(price={"country": "US", "currency": "USD", "value": 4.99}, offer=trial_offer)
        )
    )
    assert trial["subscriptions"][0]["price"]["value"] == 4.99
    assert trial["total_revenue_usd"] == 0.0
    renewal = subscription(
        store_transaction_id="tx-2",
        purchased_at=T1,
        expires_at=T2,
        price={"country": "US", "currency": "USD", "value": 4.99},
    )
    assert data(shop.set_transaction("u", **renewal))["total_revenue_usd"] == 4.99
    feed = shop.client.get("/api/admin/v1/events/", headers=shop.headers()).json()["data"]
    [started] = [event for event in feed if event["event_type"] == "trial_started"]
    assert (
        started["payload"]["event_properties"]["price_local"],
        started["payload"]["event_properties"]["price_usd"],
    ) == (
        None,
        None,
    )
    assert list(verification.verify(runtime)) == []


# Grant and revoke ---------------------------------------------------------------


def test_grant_lifetime_and_timed_access(shop, clock, runtime):
    now = "2025-01-15T12:00:00.000000+00:00"
    profile = data(shop.grant("u", access_level_id="premium"))
    [level] = profile["access_levels"]
    # The contract declares these ids non-nullable: the product v1 shows, and an id of the grant's own.
    assert level["store"] == "adapty" and level["store_product_id"] == "adapty_server_side_product"
    assert (
        uuid.UUID(level["store_transaction_id"])
        and level["store_original_transaction_id"] == (level["store_transaction_id"])
    )
    assert level["starts_at"] == now and level["expires_at"] is None
    assert list(verification.verify(runtime)) == []  # the id is derived again as it was stored
    shop.access_level("pro")
    profile = data(shop.grant("u", access_level_id="pro", starts_at=T1, expires_at=T2))
    assert [(lv["access_level_id"], lv["starts_at"], lv["expires_at"]) for lv in profile["access_levels"]] == [
        ("premium", now, None),
        ("pro", T1, T2),
    ]


def test_grant_of_an_unknown_level_is_the_contract_error(shop, runtime):
    before = db_snapshot(runtime)
    response = shop.grant("u", access_level_id="platinum")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"source": "non_field_errors", "errors": ["Paid access level `platinum` does not exist"]}],
        "error_code": "paid_access_level_does_not_exist",
        "status_code": 400,
    }
    assert db_snapshot(runtime) == before


def test_grant_needs_expiry_after_start(shop):
    response = shop.grant("u", access_level_id="premium", starts_at=T1, expires_at=T0)
    assert response.status_code == 400 and response.json()["error_code"] == "value_error"


def test_revoke_ends_access_now_by_default(shop):
    shop.set_transaction("u", **subscription())
    profile = data(shop.revoke("u", access_level_id="premium"))
    [level] = profile["access_levels"]
    assert level["expires_at"] == "2025-01-15T12:00:00.000000+00:00"
    assert level["cancellation_reason"] == "adapty_revoked"
    assert profile["subscriptions"][0]["expires_at"] == T1  # the store's record is unchanged


def test_revoke_at_a_given_time_and_a_later_purchase_restores_access(shop):
    shop.grant("u", access_level_id="premium")
    at = "2025-01-20T00:00:00.000000+00:00"
    assert data(shop.revoke("u", access_level_id="premium", revoke_at=at))["access_levels"][0]["expires_at"] == at
    profile = data(
        shop.set_transaction("u", **subscription(purchased_at=T1, originally_purchased_at=T1, expires_at=T2))
    )
    assert profile["access_levels"][0]["expires_at"] == T2


def test_revoke_errors(shop, runtime):
    unknown = shop.revoke("u", access_level_id="platinum")
    assert unknown.json()["error_code"] == "paid_access_level_does_not_exist"
    lacking = shop.revoke("u", access_level_id="premium")
    assert lacking.status_code == 400
    assert lacking.json()["error_code"] == "profile_paid_access_level_does_not_exist"
    shop.set_transaction("u", **subscription())
    before = db_snapshot(runtime)
    late = shop.revoke("u", access_level_id="premium", revoke_at=T2)
    assert late.status_code == 400
    assert late.json()["error_code"] == "revocation_date_more_than_expiration_date"
    assert db_snapshot(runtime) == before


def test_other_apps_cannot_write_purchases_to_a_profile(shop, runtime, client):
    from support.api import new_app

    other = new_app(runtime, client, "Other")
    profile_id = data(shop.get("u"))["profile_id"]
    by_id = {"adapty-profile-id": profile_id}
    for path, body in [
        ("/purchase/set/transaction/", subscription()),
        ("/purchase/profile/grant/access-level/", {"access_level_id": "premium"}),
    ]:
        assert other.request("POST", path, json=body, headers=by_id).status_code == 404
    assert data(shop.get("u"))["access_levels"] == []


def test_verify_finds_and_fixes_a_tampered_profile(shop, runtime):
    shop.set_transaction("u", **subscription())
    assert list(verification.verify(runtime)) == []
    with runtime.db.write() as conn:
        conn.exec_driver_sql("UPDATE profiles SET total_revenue_usd = 0")
    [difference] = list(verification.verify(runtime, fix=True))
    assert difference["fixed"] is True
    assert list(verification.verify(runtime)) == []
    assert data(shop.get("u"))["total_revenue_usd"] == 9.99
