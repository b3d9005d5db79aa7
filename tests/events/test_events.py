"""Events in the outbox, the feed, and webhook delivery to a real receiver on loopback."""

import hashlib
import hmac
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from support.clock import wait_until
from support.database import db_snapshot
from support.events import drain, feed
from support.profiles import PHONE, TABLET
from support.purchases import one_time, subscription
from support.receiver import Receiver

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.runtime import Runtime
from subledger.core.tables import deliveries
from subledger.events import rules
from subledger.events import service as events_service
from subledger.purchases import service as purchases_service
from subledger.purchases import verification
from subledger.worker import DeliveryWorker

# Date-times as the ledger keeps them, and v1 and webhooks answer them.
T0 = "2025-01-01T10:00:00.000000+0000"
T1 = "2025-02-01T10:00:00.000000+0000"
T2 = "2025-03-01T10:00:00.000000+0000"

TRIAL = {
    "offer": {"category": "introductory", "type": "free_trial", "id": None},
    "price": {"country": "US", "currency": "USD", "value": 0},
}
WEBHOOK_KEYS = [
    "profile_id",
    "customer_user_id",
    "idfv",
    "idfa",
    "advertising_id",
    "profile_install_datetime",
    "user_agent",
    "email",
    "event_type",
    "event_datetime",
    "event_properties",
    "event_api_version",
    "profiles_sharing_access_level",
    "attributions",
    "user_attributes",
    "integration_ids",
    "play_store_purchase_token",
]


@pytest.fixture
def shop(api, clock):
    api.product("monthly", "premium", "P1M")
    api.product("lifetime", "premium", "lifetime")
    clock.current = clock.current.replace(year=2025, month=1, day=1, hour=10)
    return api


def types(api, **params) -> list[str]:
    return [event["event_type"] for event in feed(api, limit=1000, **params)["data"]]


def test_every_change_makes_its_events(shop):
    shop.create("u", email="u@example.com", custom_attributes=[{"key": "level", "value": 3}])
    shop.set_transaction("u", **subscription(**TRIAL, expires_at="2025-01-08T10:00:00.000000+0000"))
    shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
    shop.set_transaction(
        "u",
        **subscription(
            store_transaction_id="tx-2",
            purchased_at=T1,
            expires_at=T2,
            renew_status=False,
            cancellation_reason="voluntarily_cancelled",
        ),
    )
    shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
    shop.set_transaction(
        "u",
        **subscription(
            store_transaction_id="tx-2",
            purchased_at=T1,
            expires_at=T2,
            billing_issue_detected_at=T2,
            grace_period_expires_at="2025-03-08T10:00:00.000000+0000",
        ),
    )
    shop.set_transaction(
        "u",
        **subscription(
            store_transaction_id="tx-2", purchased_at=T1, expires_at=T2, refunded_at=T1, cancellation_reason="refund"
        ),
    )
    shop.set_transaction("u", **one_time())
    shop.set_transaction("u", **one_time(refunded_at=T1, cancellation_reason="refund"))
    shop.grant("u", access_level_id="premium")
    shop.delete("u")
    assert types(shop) == [
        "profile_created",
        "trial_started",
        "access_level_updated",
        "trial_converted",
        "access_level_updated",
        "subscription_renewal_cancelled",
        "access_level_updated",
        "subscription_renewal_reactivated",
        "access_level_updated",
        "billing_issue_detected",
        "entered_grace_period",
        "access_level_updated",
        "subscription_refunded",
        "access_level_updated",
        "non_subscription_purchase",
        "access_level_updated",
        "non_subscription_purchase_refunded",
        "access_level_updated",
        "access_level_updated",
        "profile_deleted",
    ]


def test_resending_a_transaction_makes_no_event(shop):
    shop.create("u")
    shop.set_transaction("u", **subscription())
    before = types(shop)
    shop.set_transaction("u", **subscription())
    assert types(shop) == before


def test_the_webhook_payload(shop):
    shop.create(
        "u",
        email="u@example.com",
        ip_v4_address="203.0.113.7",
        custom_attributes=[{"key": "level", "value": 3}],
        installation_meta={"device_id": PHONE, "idfv": "IDFV", "user_agent": "ua"},
    )
    shop.set_transaction("u", **subscription(price={"country": "DE", "currency": "EUR", "value": 9.99}))
    [started] = feed(shop, event_type="subscription_started")["data"]
    body = started["payload"]
    assert list(body) == WEBHOOK_KEYS
    assert body["event_type"] == "subscription_started" and body["event_datetime"] == T0
    assert body["customer_user_id"] == "u" and body["email"] == "u@example.com"
    assert (body["idfv"], body["user_agent"], body["idfa"]) == ("IDFV", "ua", None)
    assert body["user_attributes"] == {"level": 3.0} and body["event_api_version"] == 1
    props = body["event_properties"]
    assert props["profile_event_id"] == started["profile_event_id"]
    assert props["vendor_product_id"] == "monthly" and props["transaction_id"] == "tx-1"
    assert (props["currency"], props["price_local"], props["price_usd"]) == ("EUR", 9.99, 10.38)
    assert (props["proceeds_local"], props["net_revenue_local"], props["tax_amount_local"]) == (6.99, 6.99, 0.0)
    assert props["proceeds_usd"] == 7.27
    assert props["consecutive_payments"] == 1 and props["profile_has_access_level"] is True
    assert props["profile_total_revenue_usd"] == 10.38 and props["store_country"] == "DE"
    assert props["profile_ip_address"] == "203.0.113.7"
    assert (props["original_price_local"], props["original_price_usd"]) == (9.99, 10.38)  # no offer: the price
    assert (props["discount_amount_local"], props["discount_amount_usd"]) == (0.0, 0.0)
    assert props["rate_after_first_year"] is False and "store_offer_number_of_periods" not in props
    assert {key: props[key] for key in rules.NO_PAYWALL} == rules.NO_PAYWALL  # bought on no known paywall
    assert body["play_store_purchase_token"] is None  # an App Store purchase
    [created] = feed(shop, event_type="profile_created")["data"]
    assert (created["payload"]["idfv"], created["payload"]["user_agent"]) == ("IDFV", "ua")  # the device sent with it
    [level] = feed(shop, event_type="access_level_updated")["data"]
    level_props = level["payload"]["event_properties"]
    assert level_props["access_level_id"] == "premium" and level_props["is_active"] is True
    assert level_props["will_renew"] is True and level_props["expires_at"] == T1
    assert level_props["starts_at"] == T0 and level_props["store_country"] == "DE"
    assert level_props["profile_country"] is None  # no country known for the address


def test_events_carry_the_device_the_profile_was_last_seen_on(shop, clock):
    shop.create("u", installation_meta={"device_id": PHONE, "idfv": "PHONE"})
    clock.advance(minutes=1)
    assert shop.patch("u", installation_meta={"device_id": TABLET, "idfv": "TABLET"}).status_code == 200
    shop.set_transaction("u", **subscription())
    clock.advance(minutes=1)
    assert shop.patch("u", installation_meta={"device_id": PHONE, "idfv": "PHONE"}).status_code == 200
    shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
    assert [e["payload"]["idfv"] for e in feed(shop, event_type="access_level_updated")["data"]] == ["TABLET", "PHONE"]


def test_analytics_disabled_profiles_send_no_device_ids_or_address(shop):
    shop.create(
        "u",
        analytics_disabled=True,
        ip_v4_address="203.0.113.7",
        installation_meta={"device_id": PHONE, "idfv": "IDFV", "user_agent": "ua"},
    )
    body = feed(shop)["data"][0]["payload"]
    assert (body["idfv"], body["idfa"], body["advertising_id"], body["user_agent"]) == (None, None, None, None)
    assert body["event_properties"]["profile_ip_address"] is None


def test_expiry_events_fire_when_the_time_passes(shop, runtime, clock):
    shop.create("u", installation_meta={"device_id": PHONE, "idfv": "PHONE"})
    shop.set_transaction("u", **subscription())
    clock.current = clock.current.replace(month=1, day=31)
    assert purchases_service.fire_due_expiries(runtime) == 0
    clock.current = clock.current.replace(month=2, day=1, hour=10)
    assert purchases_service.fire_due_expiries(runtime) == 1
    assert purchases_service.fire_due_expiries(runtime) == 0
    shop.set_transaction("u", **subscription())  # re-sent: the same end does not re-arm it
    assert purchases_service.fire_due_expiries(runtime) == 0
    [expired] = feed(shop, event_type="subscription_expired")["data"]
    assert expired["event_datetime"] == T1
    assert expired["payload"]["idfv"] == "PHONE"  # the device the profile was last seen on
    # A renewal re-arms the chain's expiry at its new end.
    shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
    clock.current = clock.current.replace(month=3, day=2)
    assert purchases_service.fire_due_expiries(runtime) == 1
    assert len(feed(shop, event_type="subscription_expired")["data"]) == 2


def test_the_feed_pages_by_cursor_and_filters(shop):
    for index in range(5):
        shop.create(f"u{index}")
    shop.set_transaction("u0", **subscription())
    first = feed(shop, limit=2)
    assert [e["customer_user_id"] for e in first["data"]] == ["u0", "u1"] and first["next_cursor"]
    second = feed(shop, limit=2, cursor=first["next_cursor"])
    assert [e["customer_user_id"] for e in second["data"]] == ["u2", "u3"]
    profile_id = first["data"][0]["profile_id"]
    assert types(shop, profile_id=profile_id) == ["profile_created", "subscription_started", "access_level_updated"]
    assert types(shop, event_type=["subscription_started", "access_level_updated"]) == [
        "subscription_started",
        "access_level_updated",
    ]
    assert types(shop, since="2030-01-01T00:00:00Z") == []
    for since in ("yesterday", "0001-01-01T00:30:00+01:00"):  # the latter is before the year 1 in UTC
        bad = shop.client.get("/api/admin/v1/events/", params={"since": since}, headers=shop.headers())
        assert bad.status_code == 400 and bad.json()["errors"][0]["source"] == "since"
    for cursor in ("x", "\u00b2", str(2**63)):  # "²" passes str.isdigit(); 2^63 is past a 64-bit sequence
        bad = shop.client.get("/api/admin/v1/events/", params={"cursor": cursor}, headers=shop.headers())
        assert bad.status_code == 400 and bad.json()["errors"][0]["source"] == "cursor", cursor


def _register(api, receiver, **extra):
    response = api.admin("POST", "/webhooks/", {"url": receiver.url, **extra})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_deliveries_are_signed_and_carry_the_configured_authorization(shop, runtime, clock):
    with Receiver() as receiver:
        endpoint = _register(shop, receiver, authorization="Bearer app-secret")
        assert receiver.received[0]["json"] == {}  # the verification request
        shop.create("u")
        shop.set_transaction("u", **subscription())
        drain(runtime, clock)
    delivered = [r for r in receiver.accepted if r["json"] != {}]
    assert [r["json"]["event_type"] for r in delivered] == ["subscription_started", "access_level_updated"]
    for request in delivered:
        headers = {key.lower(): value for key, value in request["headers"].items()}
        assert headers["authorization"] == "Bearer app-secret"
        assert headers["subledger-event-id"] == request["json"]["event_properties"]["profile_event_id"]
        stamp, digest = (part.split("=", 1)[1] for part in headers["subledger-signature"].split(","))
        expected = hmac.new(
            endpoint["signing_secret"].encode(), stamp.encode() + b"." + request["raw"], hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(digest, expected)


def test_secrets_are_sealed_at_rest(shop, runtime):
    with Receiver() as receiver:
        endpoint = _register(shop, receiver, authorization="Bearer app-secret")
    with runtime.db.read() as conn:
        stored = conn.exec_driver_sql("SELECT authorization_header, signing_secret FROM webhook_endpoints").one()
    assert "app-secret" not in stored[0] and endpoint["signing_secret"] not in stored[1]


def test_an_endpoint_that_fails_verification_is_not_saved(shop):
    with Receiver(script=["fail"]) as receiver:
        response = shop.admin("POST", "/webhooks/", {"url": receiver.url})
    assert response.status_code == 400 and response.json()["error_code"] == "webhook_verification_failed"
    assert shop.admin("GET", "/webhooks/").json()["data"] == []
    unreachable = shop.admin("POST", "/webhooks/", {"url": "http://127.0.0.1:9/nothing"})
    assert unreachable.status_code == 400


@pytest.mark.parametrize("url", ["http://" + "a" * 64 + ".com/", "http://a..b/", "http://\u2603.com/"])
def test_a_url_that_passes_as_a_url_but_cannot_be_requested_is_refused(shop, runtime, url):
    before = db_snapshot(runtime)
    response = shop.admin("POST", "/webhooks/", {"url": url})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "url", response.text
    assert db_snapshot(runtime) == before


def test_a_url_longer_than_can_be_kept_is_refused_before_any_request(shop, runtime):
    before = db_snapshot(runtime)
    with Receiver() as receiver:
        url = receiver.url + "/" + "a" * (2048 - len(receiver.url))  # 2,049 characters
        response = shop.admin("POST", "/webhooks/", {"url": url})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "url", response.text
    assert receiver.received == [] and db_snapshot(runtime) == before


def test_an_authorization_value_that_cannot_be_a_header_is_refused(shop):
    response = shop.admin("POST", "/webhooks/", {"url": "http://127.0.0.1:9/", "authorization": "Bearer \u00e9\n"})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "authorization"


def test_unknown_event_types_are_refused(shop):
    response = shop.admin("POST", "/webhooks/", {"url": "http://127.0.0.1:9/", "event_types": ["nope"]})
    assert response.status_code == 400 and response.json()["error_code"] == "invalid_enumeration_member"


def test_failures_are_retried_in_order_then_dead_lettered_and_replayed(shop, runtime, clock):
    with Receiver(script=["ok"] + ["fail", "close", "fail"]) as receiver:
        _register(shop, receiver)
        shop.create("u")
        shop.set_transaction("u", **subscription())
        drain(runtime, clock)
        # after three failures the first event went through, then the next, in order
        assert [e["event_type"] for e in receiver.events()] == ["subscription_started", "access_level_updated"]
        attempts = shop.admin("GET", "/deliveries/").json()["data"]
        assert sorted(len(d["attempts"]) for d in attempts) == [1, 4]

        receiver.script = ["fail"] * 1000
        shop.set_transaction("u", **subscription(store_transaction_id="tx-2", purchased_at=T1, expires_at=T2))
        drain(runtime, clock)
        dead = shop.admin("GET", "/deliveries/?status=dead").json()["data"]
        assert {d["event_type"] for d in dead} == {"subscription_renewed", "access_level_updated"}
        for delivery in dead:  # retried for 24 hours at least, with growing pauses
            times = [datetime.fromisoformat(a["attempted_at"]) for a in delivery["attempts"]]
            assert times[-1] - times[0] >= timedelta(hours=24) and len(times) > 10

        receiver.script = []
        replayed = shop.admin("POST", "/deliveries/replay/", {})
        assert replayed.json()["data"]["replayed"] == 2
        drain(runtime, clock)
        assert [e["event_type"] for e in receiver.events()][-2:] == ["subscription_renewed", "access_level_updated"]
        assert shop.admin("GET", "/deliveries/?status=dead").json()["data"] == []


def test_an_endpoint_gets_just_the_events_it_asked_for_each_with_its_own_body(shop, runtime, clock):
    with Receiver() as receiver:
        _register(shop, receiver, event_types=["access_level_updated"])
        shop.create("u")
        shop.set_transaction("u", **subscription())
        drain(runtime, clock)
        delivered = receiver.events()
    events = feed(shop)["data"]
    assert {e["event_type"] for e in events} > {"profile_created", "access_level_updated"}
    # As the feed has it, but for the Play token, which an endpoint gets only when it asks.
    payloads = [e["payload"] for e in events if e["event_type"] == "access_level_updated"]
    assert delivered == [{k: v for k, v in payload.items() if k != "play_store_purchase_token"} for payload in payloads]


def test_a_slow_receiver_times_out_and_is_retried(shop, runtime, clock):
    runtime.settings.webhook_timeout_seconds = 0.5
    with Receiver(script=["ok", "slow"], slow_seconds=1.5) as receiver:
        _register(shop, receiver, event_types=["profile_created"])
        shop.create("u")
        drain(runtime, clock)
        [delivery] = shop.admin("GET", "/deliveries/").json()["data"]
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 2
    assert "Timeout" in delivery["attempts"][0]["error"]


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_timeout(shop, runtime, clock):
    # Each byte comes well within the timeout; the whole answer would take about 3.8 s.
    runtime.settings.webhook_timeout_seconds = 0.5
    with Receiver(script=["ok", "trickle"]) as receiver:
        _register(shop, receiver, event_types=["profile_created"])
        shop.create("u")
        drain(runtime, clock)
        [delivery] = shop.admin("GET", "/deliveries/").json()["data"]
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 2
    assert delivery["attempts"][0]["error"] == "TimeoutError: no answer within 0.5 seconds"


def test_an_endpoint_trickling_its_verification_answer_is_refused_at_the_timeout(shop, runtime):
    runtime.settings.webhook_timeout_seconds = 0.5
    with Receiver(script=["trickle"]) as receiver:
        refused = shop.admin("POST", "/webhooks/", {"url": receiver.url})
    assert refused.status_code == 400 and refused.json()["error_code"] == "webhook_verification_failed"
    assert refused.json()["errors"][0]["errors"] == ["The endpoint did not answer within 0.5 seconds."]
    assert shop.admin("GET", "/webhooks/").json()["data"] == []


def test_an_endpoint_that_stops_answering_gets_one_slot_until_it_answers(shop, runtime):
    # Long enough for the test, short enough that without the rule it ends soon (and fails).
    runtime.settings.webhook_timeout_seconds = 15
    with Receiver(script=["ok", "fail"] + ["hold"] * 5) as stuck, Receiver() as quick:
        stuck_id = uuid.UUID(_register(shop, stuck, event_types=["profile_created"])["endpoint_id"])
        _register(shop, quick, event_types=["profile_created"])
        worker = DeliveryWorker(runtime, in_flight=4, idle_sleep=0.05)

        def run_until(condition) -> None:
            for _ in range(100):
                if condition():
                    return
                worker.run_once()
            raise AssertionError("the worker did not get there")

        def delivered(*users: str) -> bool:
            return sorted(event["customer_user_id"] for event in quick.events()) == sorted(users)

        try:
            shop.create("first")  # its delivery to the stuck endpoint fails
            run_until(lambda: delivered("first") and len(stuck.received) == 2)
            run_until(lambda: not worker.run_once())  # the failure is recorded
            users = ["a", "b", "c", "d", "e"]
            for user in users:
                shop.create(user)
            # Four slots: without the rule, the held deliveries would take them all.
            run_until(lambda: delivered("first", *users))
            with runtime.db.read() as conn:
                claimed = conn.execute(
                    select(func.count()).where(
                        deliveries.c.endpoint_id == stuck_id, deliveries.c.claimed_until.is_not(None)
                    )
                ).scalar_one()
            assert claimed == 1  # "a"'s, still held
            wait_until(lambda: len(stuck.received) >= 3, 20)
            assert len(stuck.received) == 3  # the verification request, "first"'s and "a"'s
        finally:
            stuck.released.set()
            worker.close()


def test_an_endpoint_slow_to_verify_holds_up_no_request(shop, runtime):
    runtime.settings.database_threads = 1  # one thread for requests' database work
    runtime.settings.webhook_timeout_seconds = 60
    with Receiver(script=["hold"]) as slow:
        registering = threading.Thread(target=_register, args=(shop, slow))
        registering.start()
        try:
            wait_until(lambda: len(slow.received) == 1, 20)  # the verification request waits
            answers = []
            creating = threading.Thread(target=lambda: answers.append(shop.create("meanwhile")))
            creating.start()
            wait_until(lambda: answers, 20)
        finally:
            slow.released.set()
            registering.join()
    assert answers[0].status_code == 200 and answers[0].json()["data"]["customer_user_id"] == "meanwhile"
    assert len(shop.admin("GET", "/webhooks/").json()["data"]) == 1


def test_a_receiver_answering_an_endless_body_is_not_read_to_the_end(shop, runtime, clock):
    with Receiver(script=["endless", "endless"]) as receiver:
        _register(shop, receiver, event_types=["profile_created"])  # the verification request
        shop.create("u")
        drain(runtime, clock)
        [delivery] = shop.admin("GET", "/deliveries/").json()["data"]
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1
    # Both answers put together: what the socket buffers took before the sender hung up.
    assert receiver.endless_sent < Receiver.ENDLESS_BYTES // 8


def test_deliveries_reach_each_profile_in_order_despite_failures(shop, runtime, clock):
    script = ["ok"] + ["fail", "ok", "close", "ok", "fail", "fail", "ok"] * 10
    with Receiver(script=script) as receiver:
        _register(shop, receiver)
        for user in ("a", "b", "c"):
            shop.create(user)
        for index in range(4):
            for user in ("a", "b", "c"):
                shop.set_transaction(
                    user,
                    **subscription(
                        store_transaction_id=f"{user}-{index}",
                        store_original_transaction_id=f"{user}-chain",
                        purchased_at=(clock.current + timedelta(days=30 * index)).isoformat(),
                        originally_purchased_at=clock.current.isoformat(),
                        expires_at=(clock.current + timedelta(days=30 * index + 30)).isoformat(),
                    ),
                )
        drain(runtime, clock)
        delivered = receiver.events()
    expected = [e["payload"] for e in feed(shop, limit=1000)["data"] if e["event_type"] != "profile_created"]
    by_profile = {}
    for body in delivered:
        by_profile.setdefault(body["profile_id"], [])
        if body["event_properties"]["profile_event_id"] not in by_profile[body["profile_id"]]:
            by_profile[body["profile_id"]].append(body["event_properties"]["profile_event_id"])
    for profile_id, ids in by_profile.items():
        assert ids == [b["event_properties"]["profile_event_id"] for b in expected if b["profile_id"] == profile_id]
    assert sum(len(ids) for ids in by_profile.values()) == len(expected)


def _feed(api) -> list[tuple[str, str]]:
    return [(event["customer_user_id"], event["event_type"]) for event in feed(api, limit=1000)["data"]]


def test_pruning_keeps_the_events_a_delivery_still_needs_and_the_recent_ones(shop, runtime, clock):
    """The endpoint receives purchases and access level updates, not profile_created: an old
    event that no endpoint wanted goes too. Lifetime purchases, so that no expiry event fires."""
    with Receiver() as receiver:
        _register(shop, receiver)
        shop.create("delivered")
        shop.set_transaction("delivered", **one_time())
        drain(runtime, clock)
        receiver.script = ["fail"] * 1000
        shop.create("dead")
        shop.set_transaction("dead", **one_time(store_transaction_id="otp-2", store_original_transaction_id="otp-2"))
        drain(runtime, clock)
        receiver.script = []
        shop.create("pending")
        shop.set_transaction("pending", **one_time(store_transaction_id="otp-3", store_original_transaction_id="otp-3"))
        clock.advance(days=40)
        shop.create("recent")
        with runtime.db.read() as conn:
            attempts = conn.exec_driver_sql("SELECT count(*) FROM delivery_attempts").scalar()

        assert events_service.prune(runtime, clock.now() - timedelta(days=30), app_id=uuid.uuid4()) == 0
        assert events_service.prune(runtime, clock.now() - timedelta(days=30), uuid.UUID(shop.app_id), page=2) == 5
        bought = ["non_subscription_purchase", "access_level_updated"]
        kept = [*(("dead", kind) for kind in bought), *(("pending", kind) for kind in bought)]
        assert _feed(shop) == [*kept, ("recent", "profile_created")]
        with runtime.db.read() as conn:  # the two deliveries that went through at the first attempt
            assert conn.exec_driver_sql("SELECT count(*) FROM delivery_attempts").scalar() == attempts - 2
        assert shop.get("delivered").json()["data"]["non_subscriptions"][0]["store_transaction_id"] == "otp-1"
        assert list(verification.verify(runtime)) == []

        drain(runtime, clock)  # the pending ones go through; the dead ones wait for a replay
        assert events_service.prune(runtime, clock.now() - timedelta(days=30)) == 2
        assert _feed(shop) == [*kept[:2], ("recent", "profile_created")]
        assert len(shop.admin("GET", "/deliveries/?status=dead").json()["data"]) == 2


def test_an_idle_worker_takes_no_write_lock(sqlite_url, tmp_path):
    """Every round of a worker with nothing to do asks whether anything is due with reads
    alone, so it never queues for SQLite's one write lock behind the requests' writes."""
    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, serve_worker="off"), Database(sqlite_url))
    other_process = Database(sqlite_url)  # its own lock file handle, as another server process has
    worker, rounds = DeliveryWorker(runtime), []
    try:
        with other_process.write():  # holds the write lock until the worker's round is over
            idle = threading.Thread(target=lambda: rounds.append(worker.run_once()))
            idle.start()
            wait_until(lambda: rounds, 20)
    finally:
        worker.close()
        runtime.db.dispose()
        other_process.dispose()
    assert rounds == [0]
