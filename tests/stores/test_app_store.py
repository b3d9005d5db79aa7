"""App Store Server Notifications V2 and StoreKit 2 transactions, signed with a test chain
shaped like Apple's and verified by Apple's library, through HTTP, down to the profile."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.app_store import BUNDLE, DAY, START, renewal, transaction
from support.apple_signing import AppleChain
from support.database import all_but_the_audit_log, db_snapshot

from subledger.core.errors import ApiError
from subledger.stores import service as stores_service
from subledger.stores.apple import service as apple_service

VALIDATE = "/purchase/app-store/transaction/validate/"


def ms(moment: int) -> str:
    return datetime.fromtimestamp(moment / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")


def profile(api, user: str = "u1") -> dict:
    response = api.get(user)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def premium(api, user: str = "u1") -> dict | None:
    return next((level for level in profile(api, user)["access_levels"] if level["access_level_id"] == "premium"), None)


def subscription(api, user: str = "u1") -> dict:
    [found] = profile(api, user)["subscriptions"]
    return found


def subscribe(store, account: str | None = "u1", **fields) -> dict:
    tx = transaction(appAccountToken=account, **fields) if account else transaction(**fields)
    assert store.notify("SUBSCRIBED/INITIAL_BUY", tx, renewal()) in ("applied", "pending")
    return tx


def test_subscribed_grants_the_level_for_the_user_its_account_token_names(store, api):
    subscribe(store)
    level = premium(api)
    assert level["store"] == "app_store" and level["store_transaction_id"] == "1000"
    assert level["expires_at"] == ms(START + 30 * DAY)
    sub = subscription(api)
    assert sub["price"] == {"country": "FR", "currency": "EUR", "value": 9.99}
    assert sub["renew_status"] is True and sub["environment"] == "Sandbox"
    assert sub["originally_purchased_at"] == ms(START)


def test_a_replayed_notification_changes_nothing(store, api, runtime):
    payload = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal(), START)
    assert store.send_payload(payload).json()["status"] == "applied"
    before = db_snapshot(runtime)
    again = store.send_payload(payload)  # re-signed, same notificationUUID
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert db_snapshot(runtime) == before


def test_did_renew_records_the_renewal_as_the_chain_latest(store, api, clock):
    subscribe(store)
    assert store.notify("DID_RENEW", transaction(1), renewal()) == "applied"
    clock.current = datetime(2025, 2, 10, tzinfo=UTC)
    assert premium(api)["expires_at"] == ms(START + 60 * DAY)
    assert subscription(api)["store_transaction_id"] == "1000001"


def test_auto_renew_switched_off_and_on_again(store, api):
    subscribe(store)
    off_at = START + 5 * DAY
    status = store.notify(
        "DID_CHANGE_RENEWAL_STATUS/AUTO_RENEW_DISABLED",
        transaction(),
        renewal(autoRenewStatus=0, signedDate=off_at),
        signed=off_at,
    )
    assert status == "applied"
    sub = subscription(api)
    assert sub["renew_status"] is False and sub["renew_status_changed_at"] == ms(off_at)
    assert premium(api)["renewal_cancelled_at"] == ms(off_at)
    on_at = START + 6 * DAY
    store.notify(
        "DID_CHANGE_RENEWAL_STATUS/AUTO_RENEW_ENABLED",
        transaction(),
        renewal(autoRenewStatus=1, signedDate=on_at),
        signed=on_at,
    )
    sub = subscription(api)
    assert sub["renew_status"] is True and sub["renew_status_changed_at"] == ms(on_at)


def test_failing_to_renew_in_a_grace_period_keeps_access_until_it_ends(store, api, clock):
    subscribe(store)
    failed_at = START + 30 * DAY
    grace_until = failed_at + 16 * DAY
    status = store.notify(
        "DID_FAIL_TO_RENEW/GRACE_PERIOD",
        transaction(),
        renewal(isInBillingRetryPeriod=True, gracePeriodExpiresDate=grace_until),
        signed=failed_at,
    )
    assert status == "applied"
    clock.current = datetime.fromtimestamp((failed_at + 3 * DAY) / 1000, UTC)
    level = premium(api)
    assert level["is_in_grace_period"] is True and level["billing_issue_detected_at"] == ms(failed_at)
    sub = subscription(api)
    assert sub["grace_period_expires_at"] == ms(grace_until) and sub["is_in_grace_period"] is True
    # The store recovers the payment: a renewal, the trouble over.
    recovered = transaction(1, signedDate=failed_at + 4 * DAY)
    assert store.notify("DID_RENEW/BILLING_RECOVERY", recovered, renewal()) == "applied"
    sub = subscription(api)
    assert sub["store_transaction_id"] == "1000001" and sub["billing_issue_detected_at"] is None


def test_failing_to_renew_without_grace_ends_access_at_expiry(store, api, clock):
    subscribe(store)
    failed_at = START + 30 * DAY
    store.notify("DID_FAIL_TO_RENEW", transaction(), renewal(isInBillingRetryPeriod=True), signed=failed_at)
    clock.current = datetime.fromtimestamp((failed_at + DAY) / 1000, UTC)
    sub = subscription(api)
    assert sub["billing_issue_detected_at"] == ms(failed_at) and sub["is_in_grace_period"] is False
    assert premium(api)["expires_at"] == ms(START + 30 * DAY)  # in the past now: not active


@pytest.mark.parametrize(
    ("subtype", "intent", "reason"),
    [
        ("VOLUNTARY", 1, "voluntarily_cancelled"),
        ("BILLING_RETRY", 2, "billing_error"),
        ("PRICE_INCREASE", 3, "price_increase"),
        ("PRODUCT_NOT_FOR_SALE", 4, "product_was_not_available"),
    ],
)
def test_expired_records_why(store, api, subtype, intent, reason):
    subscribe(store)
    gone = renewal(autoRenewStatus=0, expirationIntent=intent)
    assert store.notify(f"EXPIRED/{subtype}", transaction(), gone, signed=START + 30 * DAY) == "applied"
    sub = subscription(api)
    assert sub["renew_status"] is False and sub["cancellation_reason"] == reason


def test_grace_period_expired(store, api, clock):
    subscribe(store)
    failed_at = START + 30 * DAY
    grace = renewal(isInBillingRetryPeriod=True, gracePeriodExpiresDate=failed_at + 6 * DAY)
    store.notify("DID_FAIL_TO_RENEW/GRACE_PERIOD", transaction(), grace, signed=failed_at)
    assert store.notify("GRACE_PERIOD_EXPIRED", transaction(), grace, signed=failed_at + 6 * DAY) == "applied"
    clock.current = datetime.fromtimestamp((failed_at + 7 * DAY) / 1000, UTC)
    sub = subscription(api)
    assert sub["is_in_grace_period"] is False and sub["billing_issue_detected_at"] == ms(failed_at)


def test_refund_ends_access_and_a_reversal_restores_it(store, api):
    subscribe(store)
    refunded_at = START + 3 * DAY
    revoked = transaction(revocationDate=refunded_at, revocationReason=0)
    assert store.notify("REFUND", revoked, renewal(autoRenewStatus=0), signed=refunded_at) == "applied"
    sub = subscription(api)
    assert sub["refunded_at"] == ms(refunded_at) and sub["cancellation_reason"] == "refund"
    assert premium(api)["expires_at"] == ms(refunded_at)
    assert store.notify("REFUND_REVERSED", transaction(), renewal(), signed=refunded_at + DAY) == "applied"
    sub = subscription(api)
    assert sub["refunded_at"] is None and sub["cancellation_reason"] is None
    assert premium(api)["expires_at"] == ms(START + 30 * DAY)


def test_revoke_ends_family_shared_access(store, api):
    shared = transaction(inAppOwnershipType="FAMILY_SHARED", appAccountToken="u1")
    store.notify("SUBSCRIBED/INITIAL_BUY", shared, renewal())
    sub = subscription(api)
    assert sub["is_family_shared"] is True and sub["price"]["value"] == 0
    revoked_at = START + 2 * DAY
    gone = transaction(inAppOwnershipType="FAMILY_SHARED", revocationDate=revoked_at)
    assert store.notify("REVOKE", gone, renewal(autoRenewStatus=0), signed=revoked_at) == "applied"
    assert premium(api)["expires_at"] == ms(revoked_at)


def test_upgrade_records_the_new_product(store, api):
    subscribe(store)
    upgraded_at = START + 10 * DAY
    yearly = transaction(
        1, productId="yearly", purchaseDate=upgraded_at, expiresDate=upgraded_at + 365 * DAY, price=99990
    )
    assert store.notify("DID_CHANGE_RENEWAL_PREF/UPGRADE", yearly, renewal(autoRenewProductId="yearly")) == "applied"
    assert premium(api)["store_product_id"] == "yearly"
    assert premium(api)["expires_at"] == ms(upgraded_at + 365 * DAY)


def test_downgrade_changes_only_the_next_renewal(store, api, runtime):
    subscribe(store)
    downgrade = renewal(autoRenewProductId="monthly_lite")
    assert store.notify("DID_CHANGE_RENEWAL_PREF/DOWNGRADE", transaction(), downgrade) == "applied"
    assert premium(api)["store_product_id"] == "monthly"


def test_offer_redeemed_and_renewal_extended(store, api):
    subscribe(store)
    offer = transaction(1, offerType=2, offerIdentifier="comeback", offerDiscountType="PAY_UP_FRONT", price=4990)
    assert store.notify("OFFER_REDEEMED/UPGRADE", offer, renewal()) == "applied"
    assert subscription(api)["offer"] == {"category": "promotional", "type": "pay_up_front", "id": "comeback"}
    extended = {**offer, "expiresDate": offer["expiresDate"] + 10 * DAY, "signedDate": offer["signedDate"] + DAY}
    assert store.notify("RENEWAL_EXTENDED", extended, renewal()) == "applied"
    assert premium(api)["expires_at"] == ms(START + 70 * DAY)
    feed = api.client.get(
        "/api/admin/v1/events/", params={"event_type": "subscription_deferred"}, headers=api.headers()
    )
    [deferred] = feed.json()["data"]  # the extension is the reference's deferral
    assert deferred["payload"]["event_properties"]["subscription_expires_at"] == ms(START + 70 * DAY).replace(
        "+00:00", "+0000"
    )


def test_a_free_trial_is_an_introductory_offer_at_no_cost(store, api):
    subscribe(store, offerType=1, offerDiscountType="FREE_TRIAL", price=0)
    sub = subscription(api)
    assert sub["offer"] == {"category": "introductory", "type": "free_trial", "id": None}
    assert sub["price"]["value"] == 0


def test_one_time_charge_is_a_non_subscription(store, api):
    bought = transaction(
        original="2000", productId="lifetime", type="Non-Consumable", expiresDate=None, appAccountToken="u1"
    )
    assert store.notify("ONE_TIME_CHARGE", bought) == "applied"
    [purchase] = profile(api)["non_subscriptions"]
    assert purchase["store_transaction_id"] == "2000" and purchase["is_refund"] is False
    assert premium(api)["expires_at"] is None


@pytest.mark.parametrize("kind", ["TEST", "CONSUMPTION_REQUEST", "REFUND_DECLINED", "PRICE_INCREASE/PENDING"])
def test_informational_notifications_are_answered_and_change_nothing(store, api, runtime, kind):
    subscribe(store)
    before = profile(api)
    tx = None if kind == "TEST" else transaction()
    assert store.notify(kind, tx) == "ignored"
    after = profile(api)
    assert after["subscriptions"] == before["subscriptions"] and after["access_levels"] == before["access_levels"]


def test_renewal_extension_summary_is_ignored(store, api):
    payload = store.payload("RENEWAL_EXTENSION/SUMMARY", None, None, START)
    del payload["data"]
    payload["summary"] = {"environment": "Sandbox", "bundleId": BUNDLE, "requestIdentifier": "r", "succeededCount": 3}
    response = store.send_payload(payload)
    assert response.status_code == 200 and response.json()["status"] == "ignored"


def test_forged_and_tampered_payloads_are_refused_logged_and_change_nothing(store, api, runtime):
    before = all_but_the_audit_log(runtime)
    forger = AppleChain("Test Apple Root CA - G3")  # same names, other keys
    payload = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal(), START)
    forged = store.send_payload(payload, chain=forger)
    assert forged.status_code == 400 and forged.json()["error_code"] == "notification_not_verified"

    genuine = store.chain.sign(payload)
    header, body, signature = genuine.split(".")
    tampered_body = forger.sign({**payload, "notificationType": "REFUND"}).split(".")[1]
    tampered = api.client.post(store.url, json={"signedPayload": f"{header}.{tampered_body}.{signature}"})
    assert tampered.status_code == 400

    other_app = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(bundleId="com.other"), renewal(), START)
    other_app["data"]["bundleId"] = "com.other"
    assert store.send_payload(other_app).status_code == 400

    xcode = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(environment="Xcode"), renewal(), START)
    xcode["data"]["environment"] = "Xcode"  # the library would skip verification for Xcode
    assert api.client.post(store.url, json={"signedPayload": forger.sign(xcode)}).status_code == 400

    for junk in (b"{}", b"not json", b'{"signedPayload": 5}', b'{"signedPayload": "a.b.c"}'):
        response = api.client.post(store.url, content=junk, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error_code"] == "notification_not_verified"

    assert all_but_the_audit_log(runtime) == before
    refused = api.admin("GET", "/store-notifications/refused/").json()["data"]
    assert len(refused) == 8
    assert all(entry["store"] == "app_store" and entry["body_sha256"] for entry in refused)
    assert any("VERIFICATION_FAILURE" in entry["reason"] for entry in refused)


@pytest.mark.parametrize(
    "odd",
    [
        {"expiresDate": "soon"},  # Apple's library refuses it while decoding
        {"expiresDate": 10**18},  # past the year 9999
        {"appAccountToken": 5},
    ],
)
def test_signed_claims_not_of_the_documented_types_are_refused(store, api, runtime, odd):
    """Signed with the app's chain, so not forged: still never a 500, and nothing changes."""
    before = all_but_the_audit_log(runtime)
    tx = transaction(**{"appAccountToken": "u1", **odd})
    notified = store.send_payload(store.payload("SUBSCRIBED/INITIAL_BUY", tx, renewal(), START))
    assert notified.status_code == 400 and notified.json()["error_code"] == "notification_not_verified"
    posted = api.request("POST", VALIDATE, "u1", json={"signed_transaction": store.chain.sign(tx)})
    assert posted.status_code == 400 and posted.json()["error_code"] == "notification_not_verified"
    assert all_but_the_audit_log(runtime) == before


def test_a_posted_transaction_the_ledger_refuses_is_a_400_with_the_reason(store, api, runtime):
    before = all_but_the_audit_log(runtime)
    tx = transaction(appAccountToken="u1", currency="XYZ")
    response = api.request("POST", VALIDATE, "u1", json={"signed_transaction": store.chain.sign(tx)})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "price.currency", response.text
    assert all_but_the_audit_log(runtime) == before


def test_refused_requests_are_pruned_once_old(store, api, runtime, clock):
    for junk in (b"{}", b"not json"):
        api.client.post(store.url, content=junk, headers={"Content-Type": "application/json"})
    assert stores_service.prune(runtime, clock.now() - timedelta(days=30))["refused_notifications"] == 0
    clock.advance(days=31)
    api.client.post(store.url, content=b"{}", headers={"Content-Type": "application/json"})
    assert stores_service.prune(runtime, clock.now() - timedelta(days=30), page=1)["refused_notifications"] == 2
    assert len(api.admin("GET", "/store-notifications/refused/").json()["data"]) == 1


def test_pruning_keeps_each_chains_newest_applied_notification_and_the_pending_ones(store, api, runtime, clock):
    subscribe(store)
    store.notify(
        "DID_CHANGE_RENEWAL_STATUS/AUTO_RENEW_DISABLED", transaction(), renewal(autoRenewStatus=0), signed=START + DAY
    )
    subscribe(store, account="newcomer", original="2000")  # pending: nobody has that account yet
    clock.advance(days=31)
    subscribe(store, original="3000")  # recent
    assert stores_service.prune(runtime, clock.now() - timedelta(days=30)) == {
        "store_notifications": 1,
        "refused_notifications": 0,
    }
    kept = api.admin("GET", "/store-notifications/").json()["data"]
    assert sorted((n["kind"], n["status"], n["store_original_transaction_id"]) for n in kept) == [
        ("DID_CHANGE_RENEWAL_STATUS/AUTO_RENEW_DISABLED", "applied", "1000"),
        ("SUBSCRIBED/INITIAL_BUY", "applied", "3000"),
        ("SUBSCRIBED/INITIAL_BUY", "pending", "2000"),
    ]
    # The store resends the pruned one: still stale against the newest state it kept.
    assert store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal()) == "stale"
    [chain] = [s for s in profile(api)["subscriptions"] if s["store_original_transaction_id"] == "1000"]
    assert chain["renew_status"] is False


def test_an_app_without_app_store_settings_has_no_notification_url(api, chain):
    response = api.client.post(f"/stores/app-store/{api.app_id}/notifications/", json={"signedPayload": "x"})
    assert response.status_code == 404
    assert api.client.post("/stores/app-store/not-a-uuid/notifications/", json={}).status_code == 404


def test_production_notifications_need_the_app_apple_id(store, api, runtime, chain):
    payload = store.payload(
        "SUBSCRIBED/INITIAL_BUY", transaction(environment="Production", appAccountToken="u1"), None, START
    )
    payload["data"].update(environment="Production", appAppleId=1234)
    assert store.send_payload(payload).json()["status"] == "applied"
    assert subscription(api)["environment"] == "Production"
    wrong = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(environment="Production"), None, START)
    wrong["data"].update(environment="Production", appAppleId=999)
    assert store.send_payload(wrong).status_code == 400


def test_a_notification_for_an_unknown_user_waits_for_the_profile(store, api, runtime):
    subscribe(store, account="newcomer")
    [pending] = api.admin("GET", "/store-notifications/?status=pending").json()["data"]
    assert pending["account"] == "newcomer" and pending["profile_id"] is None
    assert stores_service.apply_pending(runtime) == 0  # still nobody
    api.create("newcomer")
    assert stores_service.apply_pending(runtime) == 1
    assert premium(api, "newcomer")["store_transaction_id"] == "1000"
    assert api.admin("GET", "/store-notifications/?status=pending").json()["data"] == []
    assert stores_service.apply_pending(runtime) == 0


def test_older_notifications_arriving_late_do_not_undo_newer_ones(store, api):
    subscribe(store)
    off_at = START + 5 * DAY
    store.notify(
        "DID_CHANGE_RENEWAL_STATUS/AUTO_RENEW_DISABLED", transaction(), renewal(autoRenewStatus=0), signed=off_at
    )
    # A retry of an earlier notification (other id) with the earlier state arrives now.
    assert store.notify("SUBSCRIBED/RESUBSCRIBE", transaction(), renewal(autoRenewStatus=1), signed=START) == "stale"
    assert subscription(api)["renew_status"] is False


def test_storekit_transactions_posted_for_a_profile(store, api, runtime):
    tx = transaction(original="3000")
    response = api.request("POST", VALIDATE, "u1", json={"signed_transaction": store.chain.sign(tx)})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["access_levels"][0]["store_original_transaction_id"] == "3000"

    before = all_but_the_audit_log(runtime)
    forged = api.request("POST", VALIDATE, "u1", json={"signed_transaction": AppleChain().sign(tx)})
    assert forged.status_code == 400 and forged.json()["error_code"] == "notification_not_verified"
    missing = api.request("POST", VALIDATE, "u1", json={})
    assert missing.status_code == 400
    nobody = api.request("POST", VALIDATE, "nobody", json={"signed_transaction": store.chain.sign(tx)})
    assert nobody.status_code == 404
    assert all_but_the_audit_log(runtime) == before


def test_a_posted_transaction_claims_what_was_pending_for_its_chain(store, api):
    # Apple tells of a renewal before the app's server has said whose chain it is.
    assert store.notify("DID_RENEW", transaction(1, original="4000"), renewal(original="4000")) == "pending"
    first = store.chain.sign(transaction(original="4000"))
    response = api.request("POST", VALIDATE, "u1", json={"signed_transaction": first})
    assert response.status_code == 200
    [sub] = response.json()["data"]["subscriptions"]
    assert sub["store_transaction_id"] == "4000001"  # the pending renewal, applied at once
    assert api.admin("GET", "/store-notifications/?status=pending").json()["data"] == []


def test_notifications_list_in_the_admin_api_and_cli(store, api):
    subscribe(store)
    [row] = api.admin("GET", "/store-notifications/?store=app_store").json()["data"]
    assert row["kind"] == "SUBSCRIBED/INITIAL_BUY" and row["status"] == "applied"
    assert row["transactions"][0]["store_transaction_id"] == "1000"
    assert api.admin("GET", "/store-notifications/?status=bogus").status_code == 400


def test_configuration_refuses_what_is_not_a_certificate_or_an_api_key(api, runtime, chain):
    app_id = uuid.UUID(api.app_id)
    with pytest.raises(ApiError) as not_a_certificate:
        apple_service.configure(runtime, app_id, BUNDLE, None, [b"-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END"])
    assert not_a_certificate.value.errors[0][0] == "root_certificate"
    with pytest.raises(ApiError) as not_a_key:
        apple_service.configure(runtime, app_id, BUNDLE, private_key="-----BEGIN PRIVATE KEY-----\nnope")
    assert not_a_key.value.errors[0][0] == "private_key"
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stored = apple_service.configure(runtime, app_id, BUNDLE, 1, [chain.root_der], "issuer", "KEY1", key.decode())
    assert stored["secrets"] == ["private_key"] and stored["settings"]["key_id"] == "KEY1"
