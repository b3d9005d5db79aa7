"""The Refund Saver: a profile's settings through the contract's endpoints, and the App Store's
consumption requests answered through Apple's library against a stand-in of Apple's API."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support.api import BASE
from support.app_store import BUNDLE, DAY, START, AppStore, transaction
from support.apple_signing import AppleChain
from support.database import db_snapshot
from support.fake_apple_api import ISSUER, KEY_ID, FakeAppleApi
from support.serving import operator_env, run

from subledger.refund_saver import rules
from subledger.stores.apple import service as apple_service

SETTINGS = BASE + "/purchase/profile/refund-saver/settings/"
ADMIN = "/api/admin/v1/refund-saver/"


def settings(api, user="u1"):
    return api.client.get(SETTINGS, headers=api.headers(user))


def set_settings(api, body, user="u1"):
    return api.client.post(SETTINGS, json=body, headers=api.headers(user))


def test_the_contract_examples(api):
    profile_id = api.create("u1").json()["data"]["profile_id"]
    fresh = settings(api)
    assert fresh.status_code == 200
    assert fresh.json() == {
        "profile_id": profile_id,
        "settings": {"consent": True, "custom_preference": "no_preference"},
    }
    changed = set_settings(api, {"custom_preference": "grant", "consent": True})
    assert changed.status_code == 200
    assert changed.json() == {"profile_id": profile_id, "settings": {"consent": True, "custom_preference": "grant"}}
    assert set_settings(api, {"consent": False}).json()["settings"] == {"consent": False, "custom_preference": "grant"}
    assert settings(api).json()["settings"] == {"consent": False, "custom_preference": "grant"}
    cleared = set_settings(api, {"custom_preference": None, "consent": None}).json()["settings"]
    assert cleared == {"consent": True, "custom_preference": "no_preference"}  # the app's defaults again


def test_an_opt_in_app_takes_silence_for_no_consent(api):
    api.create("u1")
    assert api.admin("PATCH", "/refund-saver/", {"consent_policy": "opt_in"}).status_code == 200
    assert settings(api).json()["settings"]["consent"] is False
    assert api.admin("GET", "/refund-saver/").json()["data"] == {
        "enabled": False,
        "default_preference": "decline_first",
        "consent_policy": "opt_in",
    }


@pytest.mark.parametrize(
    ("body", "code", "source"),
    [
        ({}, "validation_error", "non_field_errors"),
        ({"custom_preference": "always"}, "invalid_enumeration_member", "custom_preference"),
        ({"consent": "yes"}, "base_error", "consent"),
    ],
)
def test_bad_settings_are_400_and_change_nothing(api, runtime, body, code, source):
    api.create("u1")
    set_settings(api, {"consent": False})
    before = db_snapshot(runtime)
    response = set_settings(api, body)
    assert response.status_code == 400
    assert (response.json()["error_code"], response.json()["errors"][0]["source"]) == (code, source)
    assert db_snapshot(runtime) == before


def test_an_unknown_profile_is_the_documented_400(api):
    for response in (settings(api, "nobody"), set_settings(api, {"consent": True}, "nobody")):
        assert response.status_code == 400
        assert response.json() == {
            "errors": [{"source": None, "errors": ["Profile does not exist"]}],
            "error_code": "profile_does_not_exist",
            "status_code": 400,
        }


# Answering Apple ------------------------------------------------------------------------------


@pytest.fixture
def apple(api, runtime, clock):
    """An app on the App Store with an API key, its Refund Saver on, Apple's API a stand-in."""
    chain = AppleChain()
    with FakeAppleApi(BUNDLE) as fake:
        runtime.settings.app_store_api_base = fake.url
        apple_service.configure(
            runtime, uuid.UUID(api.app_id), BUNDLE, 1234, [chain.root_pem], ISSUER, KEY_ID, fake.private_key_pem
        )
        api.product("monthly", "premium", "P1M")
        api.product("pass", "premium", "P30D")
        assert api.admin("PATCH", "/refund-saver/", {"enabled": True}).status_code == 200
        api.create("u1")
        clock.current = datetime(2025, 1, 16, tzinfo=UTC)
        api.fake = fake
        api.app_store = AppStore(api, chain)
        api.clock = clock
        yield api


def bought(api, **fields) -> dict:
    """A monthly subscription of u1, in the ledger as the App Store reported it; its claims."""
    tx = transaction(original="2000", **fields)
    body = {
        "purchase_type": "subscription" if tx["type"] == "Auto-Renewable Subscription" else "one_time_purchase",
        "store": "app_store",
        "store_product_id": tx["productId"],
        "store_transaction_id": tx["transactionId"],
        "store_original_transaction_id": tx["originalTransactionId"],
        "price": {"country": "FR", "currency": "EUR", "value": 9.99},
        "purchased_at": datetime.fromtimestamp(tx["purchaseDate"] / 1000, UTC).isoformat(),
    }
    if body["purchase_type"] == "subscription":
        expires = datetime.fromtimestamp(tx["expiresDate"] / 1000, UTC).isoformat()
        body.update(originally_purchased_at=body["purchased_at"], expires_at=expires, renew_status=True)
    assert api.set_transaction("u1", **body).status_code == 200
    return tx


def consumption_request(api, tx: dict, payload: dict | None = None) -> str:
    payload = payload or api.app_store.payload("CONSUMPTION_REQUEST", tx, None, START + 15 * DAY)
    response = api.app_store.send_payload(payload)
    assert response.status_code == 200, response.text
    api.clock.advance(seconds=1)  # the log lists requests newest first
    return response.json()["status"]


def test_a_first_request_is_declined_and_the_next_granted(apple, runtime):
    tx = bought(apple)
    first = apple.app_store.payload("CONSUMPTION_REQUEST", tx, None, START + 15 * DAY)
    consumption_request(apple, tx, first)
    [(transaction_id, sent)] = apple.fake.received
    assert transaction_id == "2000"
    assert sent == {
        "customerConsented": True,
        "sampleContentProvided": False,
        "deliveryStatus": "DELIVERED",
        "refundPreference": "DECLINE",
    }
    assert consumption_request(apple, tx, first) == "duplicate"  # Apple sending it again: answered once
    assert len(apple.fake.received) == 1
    consumption_request(apple, tx)  # a second request for the same transaction
    assert apple.fake.received[1][1]["refundPreference"] == "GRANT_FULL"
    log = apple.admin("GET", "/refund-saver/requests/").json()["data"]
    assert [(row["refund_preference"], row["answered"]) for row in log] == [("grant", True), ("decline", True)]


def test_the_profiles_own_preference_wins(apple):
    tx = bought(apple)
    set_settings(apple, {"custom_preference": "no_preference"})
    consumption_request(apple, tx)
    assert "refundPreference" not in apple.fake.received[0][1]
    set_settings(apple, {"custom_preference": "grant"})
    consumption_request(apple, tx)
    assert apple.fake.received[1][1]["refundPreference"] == "GRANT_FULL"


def test_without_consent_or_with_the_saver_off_apple_is_not_answered(apple):
    tx = bought(apple)
    set_settings(apple, {"consent": False})
    consumption_request(apple, tx)
    set_settings(apple, {"consent": True})
    apple.admin("PATCH", "/refund-saver/", {"enabled": False})
    consumption_request(apple, tx)
    consumption_request(apple, transaction(original="9999"))  # not in the ledger either
    assert apple.fake.received == []
    notes = [row["note"] for row in apple.admin("GET", "/refund-saver/requests/").json()["data"]]
    assert notes == [
        "not answered: the Refund Saver is off",
        "not answered: the Refund Saver is off",
        "not answered: the customer did not consent to share data",
    ]


def test_a_prorated_refund_sends_the_share_used(apple, clock):
    apple.admin("PATCH", "/refund-saver/", {"default_preference": "grant_prorated"})
    one_time = {"type": "Non-Renewing Subscription", "productId": "pass", "expiresDate": None}
    tx = bought(apple, **one_time)  # a 30-day pass bought on 2025-01-01
    clock.current = datetime(2025, 1, 16, tzinfo=UTC)  # half of it used
    consumption_request(apple, tx)
    sent = apple.fake.received[0][1]
    assert (sent["refundPreference"], sent["consumptionPercentage"]) == ("GRANT_PRORATED", 50000)
    clock.current = datetime(2025, 3, 1, tzinfo=UTC)  # all of it used: declined
    consumption_request(apple, tx)
    assert (apple.fake.received[1][1]["refundPreference"], apple.fake.received[1][1]["consumptionPercentage"]) == (
        "DECLINE",
        100000,
    )


def test_apple_unavailable_is_a_503_and_the_resent_request_is_answered(apple, runtime):
    tx = bought(apple)
    payload = apple.app_store.payload("CONSUMPTION_REQUEST", tx, None, START + 15 * DAY)
    apple.fake.answers = [500]
    failed = apple.app_store.send_payload(payload)
    assert failed.status_code == 503 and failed.json()["error_code"] == "store_unavailable"
    assert apple.admin("GET", "/refund-saver/requests/").json()["data"] == []
    assert consumption_request(apple, tx, payload) == "ignored"  # Apple sends it again: answered now
    assert apple.fake.received[0][1]["refundPreference"] == "DECLINE"


def test_a_refusal_by_apple_is_logged(apple):
    tx = bought(apple)
    apple.fake.answers = [400]
    consumption_request(apple, tx)
    [row] = apple.admin("GET", "/refund-saver/requests/").json()["data"]
    assert row["answered"] is False and row["note"].startswith("not answered: Apple refused the answer (400")


@pytest.mark.slow  # runs the command line in processes
def test_the_cli_configures_and_lists(apple, runtime, database_url, tmp_path):
    env = operator_env(tmp_path, database_url)
    shown = run(env, "refund-saver", "configure", "--app", apple.app_id, "--default-preference", "decline")
    assert '"default_preference": "decline"' in shown.stdout and '"enabled": true' in shown.stdout
    consumption_request(apple, bought(apple))
    assert '"refund_preference":"decline"' in run(env, "refund-saver", "requests", "--app", apple.app_id).stdout


@pytest.mark.parametrize(
    ("own", "default", "earlier", "auto_renewable", "share", "expected"),
    [
        (None, "decline_first", 0, True, None, ("decline", None)),
        (None, "decline_first", 1, True, None, ("grant", None)),
        ("decline", "decline_first", 3, True, None, ("decline", None)),
        ("no_preference", "grant", 0, False, "0.5", (None, 50000)),
        (None, "grant_prorated", 0, True, None, ("grant_prorated", None)),  # Apple measures subscriptions
        (None, "grant_prorated", 0, False, "0.25", ("grant_prorated", 25000)),
        (None, "grant_prorated", 0, False, "0", ("grant", 0)),  # untouched: all of it back
        (None, "grant_prorated", 0, False, "1", ("decline", 100000)),  # used up
        (None, "grant_prorated", 0, False, None, (None, None)),  # nothing to measure: no preference
    ],
)
def test_the_answer_rules(own, default, earlier, auto_renewable, share, expected):
    answer = rules.answer(own, default, earlier, auto_renewable, None if share is None else Decimal(share))
    assert (answer.preference, answer.consumption) == expected
