"""Google Play: Pub/Sub pushes of developer notifications through HTTP, the real google-auth
and HTTP client against a Google stand-in on loopback, down to the profile."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from support.database import all_but_the_audit_log, db_snapshot
from support.fake_google import PACKAGE
from support.play_store import DAY, START, VALIDATE, iso, purchase

from subledger.stores import service as stores_service
from subledger.stores.google import service as google_service


def resp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")


def profile(api, user: str = "u1") -> dict:
    response = api.get(user)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def subscription(api, user: str = "u1") -> dict:
    [found] = profile(api, user)["subscriptions"]
    return found


def premium(api, user: str = "u1") -> dict | None:
    return next((level for level in profile(api, user)["access_levels"] if level["access_level_id"] == "premium"), None)


def test_a_purchase_is_read_from_play_recorded_and_acknowledged(play, api):
    play.fake.subscriptions["tok1"] = purchase()
    assert play.notify(4) == "applied"
    sub = subscription(api)
    assert sub["store"] == "play_store" and sub["store_transaction_id"] == "GPA.1"
    assert sub["store_base_plan_id"] == "p1m" and sub["renew_status"] is True
    assert sub["price"] == {"country": "DE", "currency": "EUR", "value": 4.99}
    assert sub["environment"] == "Production"
    assert premium(api)["expires_at"] == resp(START + 30 * DAY)
    assert play.fake.acknowledged == ["tok1"] and play.fake.tokens_issued == 1


def test_renewal_is_a_new_order_of_the_chain(play, api, clock):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    acknowledged = "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED"
    play.fake.subscriptions["tok1"] = purchase(
        order="GPA.1..0", expiry=START + 60 * DAY, acknowledgementState=acknowledged
    )
    assert play.notify(2, at=START + 30 * DAY) == "applied"
    sub = subscription(api)
    assert sub["store_transaction_id"] == "GPA.1..0" and sub["store_original_transaction_id"] == "GPA.1"
    assert sub["purchased_at"] == resp(START + 30 * DAY)
    assert play.fake.acknowledged == ["tok1"]  # acknowledged once, when it was bought


def test_cancel_records_who_cancelled_and_when(play, api):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    cancelled_at = START + 3 * DAY
    play.fake.subscriptions["tok1"] = purchase(
        state="SUBSCRIPTION_STATE_CANCELED",
        auto=False,
        canceledStateContext={"userInitiatedCancellation": {"cancelTime": iso(cancelled_at)}},
    )
    assert play.notify(3, at=cancelled_at) == "applied"
    sub = subscription(api)
    assert sub["renew_status"] is False and sub["cancellation_reason"] == "voluntarily_cancelled"
    assert sub["renew_status_changed_at"] == resp(cancelled_at)
    assert premium(api)["expires_at"] == resp(START + 30 * DAY)  # access runs to the end of the period


def test_grace_period_then_recovery(play, api, clock):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    failed_at = START + 30 * DAY
    play.fake.subscriptions["tok1"] = purchase(state="SUBSCRIPTION_STATE_IN_GRACE_PERIOD", expiry=failed_at + 7 * DAY)
    assert play.notify(6, at=failed_at) == "applied"
    clock.current = failed_at + 2 * DAY
    sub = subscription(api)
    assert sub["billing_issue_detected_at"] == resp(failed_at) and sub["is_in_grace_period"] is True
    assert premium(api) is not None
    play.fake.subscriptions["tok1"] = purchase(order="GPA.1..0", expiry=failed_at + 32 * DAY)
    assert play.notify(1, at=failed_at + 3 * DAY) == "applied"
    sub = subscription(api)
    assert sub["store_transaction_id"] == "GPA.1..0" and sub["billing_issue_detected_at"] is None


def test_on_hold_ends_access_with_a_billing_issue(play, api, clock):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    held_at = START + 30 * DAY
    play.fake.subscriptions["tok1"] = purchase(state="SUBSCRIPTION_STATE_ON_HOLD", expiry=held_at)
    assert play.notify(5, at=held_at) == "applied"
    clock.current = held_at + DAY
    sub = subscription(api)
    assert sub["billing_issue_detected_at"] == resp(held_at) and sub["is_in_grace_period"] is False
    assert premium(api)["expires_at"] == resp(held_at)


@pytest.mark.parametrize(
    ("kind", "context"), [(13, "systemInitiatedCancellation"), (12, "developerInitiatedCancellation")]
)
def test_expired_and_revoked(play, api, kind, context):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    ended = START + 5 * DAY
    play.fake.subscriptions["tok1"] = purchase(
        state="SUBSCRIPTION_STATE_EXPIRED", expiry=ended, auto=False, canceledStateContext={context: {}}
    )
    assert play.notify(kind, at=ended) == "applied"
    sub = subscription(api)
    assert sub["expires_at"] == resp(ended) and sub["renew_status"] is False
    assert sub["cancellation_reason"] == {"systemInitiatedCancellation": "billing_error"}.get(
        context, "cancelled_by_developer"
    )


def test_a_free_trial_costs_nothing(play, api):
    play.fake.subscriptions["tok1"] = purchase(testPurchase={})
    play.fake.subscriptions["tok1"]["lineItems"][0]["offerPhase"] = {"freeTrial": {}}
    play.fake.subscriptions["tok1"]["lineItems"][0]["offerDetails"]["offerId"] = "trial7"
    play.notify(4)
    sub = subscription(api)
    assert sub["offer"] == {"category": "introductory", "type": "free_trial", "id": "trial7"}
    assert sub["price"]["value"] == 0 and sub["environment"] == "Sandbox"


def test_a_voided_purchase_is_a_refund(play, api):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    voided_at = START + 4 * DAY
    voided = {"purchaseToken": "tok1", "orderId": "GPA.1", "productType": 1, "refundType": 1}
    assert play.notify_other("voidedPurchaseNotification", voided, at=voided_at) == "applied"
    sub = subscription(api)
    assert sub["refunded_at"] == resp(voided_at) and sub["cancellation_reason"] == "refund"
    assert premium(api)["expires_at"] == resp(voided_at)


def test_a_one_time_product_is_priced_in_the_buyers_region(play, api):
    play.fake.catalog["coins"] = {
        "sku": "coins",
        "defaultPrice": {"priceMicros": "990000", "currency": "USD"},
        "prices": {"DE": {"priceMicros": "1190000", "currency": "EUR"}},
    }
    play.fake.products["ptok"] = {
        "purchaseState": 0,
        "orderId": "GPA.9",
        "purchaseTimeMillis": str(int((START + DAY).timestamp() * 1000)),
        "regionCode": "DE",
        "acknowledgementState": 0,
        "obfuscatedExternalAccountId": "u1",
    }
    bought = {"version": "1.0", "notificationType": 1, "purchaseToken": "ptok", "sku": "coins"}
    assert play.notify_other("oneTimeProductNotification", bought) == "applied"
    [purchase_] = profile(api)["non_subscriptions"]
    assert purchase_["store_transaction_id"] == "GPA.9" and purchase_["is_consumable"] is True
    assert play.fake.acknowledged == ["ptok"]


def test_test_notifications_and_unknown_tokens_change_nothing(play, api, runtime):
    assert play.notify_other("testNotification", {"version": "1.0"}) == "ignored"
    assert play.notify(4, token="nobody-knows") == "ignored"
    assert play.notify(4, token="../../edits") == "ignored"  # never sent to Play as a path
    assert profile(api)["subscriptions"] == []


def test_a_replayed_message_changes_nothing(play, api, runtime):
    play.fake.subscriptions["tok1"] = purchase()
    assert play.notify(4, message_id="m1") == "applied"
    before = db_snapshot(runtime)
    assert play.notify(4, message_id="m1") == "duplicate"
    assert db_snapshot(runtime) == before


def test_a_wrong_token_or_package_is_refused_and_logged(play, api, runtime):
    play.fake.subscriptions["tok1"] = purchase()
    before = all_but_the_audit_log(runtime)
    data = {"version": "1.0", "packageName": PACKAGE, "eventTimeMillis": "1735689600000", "testNotification": {}}
    wrong_token = play.push(data, path=f"/stores/play-store/{api.app_id}/notifications/?token=guess")
    assert wrong_token.status_code == 400 and wrong_token.json()["error_code"] == "notification_not_verified"
    no_token = play.push(data, path=f"/stores/play-store/{api.app_id}/notifications/")
    assert no_token.status_code == 400
    other_package = play.push({**data, "packageName": "com.other"})
    assert other_package.status_code == 400
    garbage = api.client.post(play.path, content=b'{"message": {"data": "%%%"}}')
    assert garbage.status_code == 400
    assert all_but_the_audit_log(runtime) == before
    refused = api.admin("GET", "/store-notifications/refused/").json()["data"]
    assert len(refused) == 4 and all(row["store"] == "play_store" for row in refused)


def test_notifications_and_answers_not_as_google_documents_them_are_refused(play, api, runtime):
    """Never a 500: a time past the year 9999, and Play API answers missing or mistyping fields."""
    before = all_but_the_audit_log(runtime)
    data = {"version": "1.0", "packageName": PACKAGE, "eventTimeMillis": str(10**20), "testNotification": {}}
    assert play.push(data).status_code == 400
    odd_answers = {
        "no-items": purchase(lineItems=[]),
        "bad-start": purchase(startTime="soon"),
        "bad-account": purchase(account=5),
        "bad-price": purchase(
            lineItems=[
                {
                    "productId": "monthly",
                    "expiryTime": iso(START),
                    "autoRenewingPlan": {"recurringPrice": {"currencyCode": "EUR", "units": "four"}},
                }
            ]
        ),
    }
    for token, answer in odd_answers.items():
        play.fake.subscriptions[token] = answer
        data = {
            "version": "1.0",
            "packageName": PACKAGE,
            "eventTimeMillis": "1735689600000",
            "subscriptionNotification": {"version": "1.0", "notificationType": 4, "purchaseToken": token},
        }
        pushed = play.push(data)
        assert pushed.status_code == 400 and pushed.json()["error_code"] == "notification_not_verified", token
        posted = api.request("POST", VALIDATE, "u1", json={"purchase_type": "subscription", "purchase_token": token})
        assert posted.status_code == 502 and posted.json()["error_code"] == "store_answer_unreadable", token
    assert all_but_the_audit_log(runtime) == before


def test_play_unavailable_answers_502_so_pubsub_retries(play, api, runtime):
    play.fake.subscriptions["tok1"] = purchase()
    play.fake.failing = True
    data = {
        "version": "1.0",
        "packageName": PACKAGE,
        "eventTimeMillis": "1735689600000",
        "subscriptionNotification": {"version": "1.0", "notificationType": 4, "purchaseToken": "tok1"},
    }
    assert play.push(data, message_id="m1").status_code == 502
    assert profile(api)["subscriptions"] == []
    play.fake.failing = False
    assert play.push(data, message_id="m1").json()["status"] == "applied"  # the retry lands


def test_a_purchase_for_an_unknown_user_waits_for_the_profile(play, api, runtime):
    play.fake.subscriptions["tok1"] = purchase(account="later")
    assert play.notify(4) == "pending"
    api.create("later")
    assert stores_service.apply_pending(runtime) == 1
    assert subscription(api, "later")["store_transaction_id"] == "GPA.1"


def test_the_apps_server_posts_a_purchase_token(play, api, runtime):
    play.fake.subscriptions["tok2"] = purchase(order="GPA.2", account=None)
    response = api.request("POST", VALIDATE, "u1", json={"purchase_type": "subscription", "purchase_token": "tok2"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["subscriptions"][0]["store_transaction_id"] == "GPA.2"
    before = db_snapshot(runtime)
    unknown = api.request("POST", VALIDATE, "u1", json={"purchase_type": "subscription", "purchase_token": "nope"})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["source"] == "purchase_token"
    no_product = api.request("POST", VALIDATE, "u1", json={"purchase_type": "one_time_purchase", "purchase_token": "x"})
    assert no_product.status_code == 400 and no_product.json()["errors"][0]["source"] == "store_product_id"
    bad_token = api.request("POST", VALIDATE, "u1", json={"purchase_type": "subscription", "purchase_token": "../x"})
    assert bad_token.status_code == 400
    other_path = {"purchase_type": "one_time_purchase", "purchase_token": "t", "store_product_id": "../../edits"}
    assert api.request("POST", VALIDATE, "u1", json=other_path).status_code == 400
    assert db_snapshot(runtime) == before


def test_a_slow_google_holds_up_no_other_request(play, api, runtime):
    """Google's answer is awaited on a thread apart from the requests' own: with one
    thread for requests, other writes and reads go on while Google is slow to answer."""
    runtime.settings.database_threads = 1
    play.fake.subscriptions["tok2"] = purchase(order="GPA.2", account=None)
    play.fake.answering.clear()
    token = {"purchase_type": "subscription", "purchase_token": "tok2"}
    with ThreadPoolExecutor(2) as threads:
        try:
            validating = threads.submit(api.request, "POST", VALIDATE, "u1", json=token)
            assert play.fake.asked.wait(10)
            created = threads.submit(api.create, "u2")
            assert created.result(timeout=10).status_code == 200
            assert api.get("u2").status_code == 200
            assert not validating.done()
        finally:
            play.fake.answering.set()
        assert validating.result(timeout=10).status_code == 200
    assert subscription(api)["store_transaction_id"] == "GPA.2"


def test_a_service_account_key_google_auth_cannot_use_is_refused(api, runtime):
    app_id = uuid.UUID(api.app_id)
    with pytest.raises(Exception) as refused:
        google_service.configure(runtime, app_id, PACKAGE, '{"type": "service_account"}')
    assert "service-account key" in str(refused.value.errors)


def test_a_push_of_an_unknown_shape_is_refused_not_a_crash(play):
    data = {"version": "1.0", "packageName": PACKAGE, "eventTimeMillis": "1735689600000"}
    response = play.push({**data, "subscriptionNotification": {"version": "1.0"}})
    assert response.status_code == 400 and response.json()["error_code"] == "notification_not_verified"


def _events(api, event_type: str) -> list[dict]:
    feed = api.client.get("/api/admin/v1/events/", params={"event_type": event_type}, headers=api.headers())
    return [event["payload"] for event in feed.json()["data"]]


def test_events_carry_the_purchase_token_a_receiver_can_revalidate_with(play, api):
    play.fake.subscriptions["tok1"] = purchase()
    assert play.notify(4) == "applied"
    [started] = _events(api, "subscription_started")
    assert started["play_store_purchase_token"] == {
        "product_id": "monthly",
        "purchase_token": "tok1",
        "is_subscription": True,
    }
    [level] = _events(api, "access_level_updated")
    assert level["play_store_purchase_token"]["purchase_token"] == "tok1"


def test_a_paused_subscription_has_its_event_once(play, api, clock):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    paused_at = START + 5 * DAY
    play.fake.subscriptions["tok1"] = purchase(state="SUBSCRIPTION_STATE_PAUSED")
    assert play.notify(10, at=paused_at) == "applied"  # SUBSCRIPTION_PAUSED
    assert play.notify(11, at=paused_at + DAY) == "applied"  # the pause schedule changed: still paused
    [paused] = _events(api, "subscription_paused")
    assert paused["event_datetime"] == paused_at.strftime("%Y-%m-%dT%H:%M:%S.000000+0000")
    assert premium(api)["expires_at"] == resp(START + 30 * DAY)  # access lasts to the paid period's end


def test_a_deferred_renewal_has_its_event_and_moves_the_expiry(play, api):
    play.fake.subscriptions["tok1"] = purchase()
    play.notify(4)
    deferred_at = START + 3 * DAY
    play.fake.subscriptions["tok1"] = purchase(expiry=START + 60 * DAY)
    assert play.notify(9, at=deferred_at) == "applied"  # SUBSCRIPTION_DEFERRED
    [deferred] = _events(api, "subscription_deferred")
    assert deferred["event_properties"]["subscription_expires_at"] == (START + 60 * DAY).strftime(
        "%Y-%m-%dT%H:%M:%S.000000+0000"
    )
    assert premium(api)["expires_at"] == resp(START + 60 * DAY)
    assert _events(api, "subscription_renewed") == []  # nothing was charged
