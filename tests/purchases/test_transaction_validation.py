"""Set transaction: every consistency check and bad field, each a 400 that changes nothing."""

import pytest
from support.database import db_snapshot
from support.purchases import T0, T1, one_time, subscription

B = "2025-01-20T00:00:00.000000+0000"  # between T0 and T1

CASES = [
    # (transaction, error_code, source of the first entry)
    (subscription(expires_at=T0), "expires_date_error", "expires_at"),
    (subscription(expires_at="2024-12-01T00:00:00Z"), "expires_date_error", "expires_at"),
    (subscription(originally_purchased_at=T1), "originally_purchased_date_error", "originally_purchased_at"),
    (
        subscription(refunded_at="2024-12-31T00:00:00Z", cancellation_reason="refund"),
        "refund_date_error",
        "refunded_at",
    ),
    (subscription(cancellation_reason="refund"), "refund_fields_error", "refunded_at"),
    (subscription(refunded_at=B), "refund_fields_error", "refunded_at"),
    (
        one_time(offer={"category": "introductory", "type": "free_trial", "id": None}),
        "one_time_purchase_trial_error",
        "offer.type",
    ),
    (subscription(store_transaction_id="t" * 51), "base_error", "store_transaction_id"),
    (subscription(is_family_shared=True), "family_share_price_error", "price.value"),
    (
        subscription(offer={"category": "promotional", "type": "pay_up_front", "id": None}),
        "missing_offer_id",
        "offer.id",
    ),
    (subscription(offer={"category": "win_back", "type": "pay_as_you_go"}), "missing_offer_id", "offer.id"),
    (
        subscription(billing_issue_detected_at="2024-12-31T00:00:00Z"),
        "billing_issue_detected_at_date_comparison_error",
        "billing_issue_detected_at",
    ),
    (subscription(grace_period_expires_at=T1), "grace_period_billing_error", "grace_period_expires_at"),
    (
        subscription(billing_issue_detected_at=T1, grace_period_expires_at=B),
        "grace_period_expires_date_error",
        "grace_period_expires_at",
    ),
    (
        subscription(renew_status_changed_at="2024-12-31T00:00:00Z"),
        "renew_status_changed_date_error",
        "renew_status_changed_at",
    ),
    # Field-level problems
    (subscription(purchase_type="rental"), "invalid_enumeration_member", "purchase_type"),
    (subscription(environment="Staging"), "invalid_enumeration_member", "environment"),
    (subscription(cancellation_reason="bored"), "invalid_enumeration_member", "cancellation_reason"),
    (
        subscription(offer={"category": "seasonal", "type": "free_trial", "id": "x"}),
        "invalid_enumeration_member",
        "offer.category",
    ),
    (
        subscription(offer={"category": "promotional", "type": "cheap", "id": "x"}),
        "invalid_enumeration_member",
        "offer.type",
    ),
    (
        subscription(price={"country": "US", "currency": "XXY", "value": 1}),
        "invalid_enumeration_member",
        "price.currency",
    ),
    (
        subscription(price={"country": "QQ", "currency": "USD", "value": 1}),
        "invalid_enumeration_member",
        "price.country",
    ),
    (subscription(price={"country": "US", "currency": "USD", "value": -1}), "base_error", "price.value"),
    (subscription(price={"country": "US", "currency": "USD", "value": "9.99"}), "base_error", "price.value"),
    (subscription(price={"country": "US", "currency": "USD", "value": 1e30}), "base_error", "price.value"),
    (subscription(price={"country": "US", "currency": "USD", "value": 10**40}), "base_error", "price.value"),
    (subscription(price={"country": "US", "currency": "USD"}), "base_error", "price.value"),
    (subscription(price=None), "base_error", "price"),
    (subscription(purchased_at="2025-01-01T10:00:00"), "datetime", "purchased_at"),
    (subscription(purchased_at="yesterday"), "datetime", "purchased_at"),
    (subscription(purchased_at=1735725600), "datetime", "purchased_at"),
    (subscription(expires_at="2025-13-01T00:00:00Z"), "datetime", "expires_at"),
    # In UTC these fall outside the years 1 to 9999; requests carry date-times from 1970 to 2999.
    (subscription(expires_at="9999-12-31T23:00:00-02:00"), "datetime", "expires_at"),
    (subscription(originally_purchased_at="0001-01-01T00:30:00+01:00"), "datetime", "originally_purchased_at"),
    (subscription(originally_purchased_at="1969-12-31T23:59:59Z"), "datetime", "originally_purchased_at"),
    (subscription(expires_at="3000-01-01T00:00:00Z"), "datetime", "expires_at"),
    (subscription(renew_status="yes"), "base_error", "renew_status"),
    (subscription(is_family_shared=None), "base_error", "is_family_shared"),
    (subscription(store_transaction_id=""), "base_error", "store_transaction_id"),
    (subscription(store_product_id=5), "base_error", "store_product_id"),
    ({k: v for k, v in subscription().items() if k != "expires_at"}, "base_error", "expires_at"),
    ({k: v for k, v in subscription().items() if k != "renew_status"}, "base_error", "renew_status"),
    (
        {k: v for k, v in subscription().items() if k != "originally_purchased_at"},
        "base_error",
        "originally_purchased_at",
    ),
    ({k: v for k, v in subscription().items() if k != "store"}, "base_error", "store"),
    (one_time(expires_at=T1), "base_error", "expires_at"),
    (one_time(renew_status=True), "base_error", "renew_status"),
]


@pytest.fixture
def buyer(api):
    api.product("monthly", "premium")
    api.create("u")
    return api


@pytest.mark.parametrize(("transaction", "code", "source"), CASES)
def test_inconsistent_or_invalid_transactions_are_refused(buyer, runtime, transaction, code, source):
    before = db_snapshot(runtime)
    response = buyer.set_transaction("u", **transaction)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["error_code"], body["errors"][0]["source"], body["status_code"]) == (code, source, 400)
    assert db_snapshot(runtime) == before


def test_date_spellings_with_offsets_are_all_accepted(buyer):
    for index, spelling in enumerate(
        [
            "2025-01-01T10:00:00.000000+0000",
            "2025-01-01T10:00:00+00:00",
            "2025-01-01T10:00:00Z",
            "2025-01-01T11:00:00+01:00",
        ]
    ):
        tx = subscription(store_transaction_id=f"tx-{index}", purchased_at=spelling, originally_purchased_at=spelling)
        response = buyer.set_transaction("u", **tx)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["subscriptions"][0]["purchased_at"] == T0


def test_valid_offers_and_free_trials_are_accepted(buyer):
    trial = subscription(
        offer={"category": "introductory", "type": "free_trial", "id": None},
        price={"country": "US", "currency": "USD", "value": 0},
    )
    data = buyer.set_transaction("u", **trial).json()["data"]
    assert data["subscriptions"][0]["offer"] == {"category": "introductory", "type": "free_trial", "id": None}
    assert data["access_levels"][0]["offer"]["type"] == "free_trial"
