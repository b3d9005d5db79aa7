"""The reference's synthetic "still active" events: some days after a trial (or a subscription
started without one) begins, trial_active (subscription_active) fires if it has not ended."""

import uuid
from datetime import timedelta

import pytest
from support.events import drain, feed
from support.purchases import subscription
from support.receiver import Receiver

from subledger.apps import service as apps_service
from subledger.purchases import service as purchases_service

TRIAL = {
    "offer": {"category": "introductory", "type": "free_trial", "id": None},
    "price": {"country": "US", "currency": "USD", "value": 0},
    "expires_at": "2025-01-08T10:00:00.000000+0000",  # 7 days
}
CONVERSION = {
    "store_transaction_id": "tx-2",
    "purchased_at": "2025-01-08T10:00:00.000000+0000",
    "expires_at": "2025-02-08T10:00:00.000000+0000",
}


@pytest.fixture
def shop(api, runtime, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = clock.current.replace(year=2025, month=1, day=1, hour=10)
    api.configure = lambda **delays: apps_service.configure(runtime.db, uuid.UUID(api.app_id), **delays)
    return api


def fired(api) -> list[tuple[str, str]]:
    return [
        (event["event_type"], event["event_datetime"][:10])
        for event in feed(api, event_type=["trial_active", "subscription_active"])["data"]
    ]


def at_day(runtime, clock, day: int) -> None:
    clock.current = clock.current.replace(day=day)
    purchases_service.fire_due_checks(runtime)


def test_trial_active_fires_while_the_trial_goes_on(shop, runtime, clock):
    shop.configure(trial_active_after_days=3)
    shop.create("u")
    assert shop.set_transaction("u", **subscription(**TRIAL)).status_code == 200
    at_day(runtime, clock, 3)
    assert fired(shop) == []  # not yet
    at_day(runtime, clock, 4)
    at_day(runtime, clock, 5)
    assert fired(shop) == [("trial_active", "2025-01-04")]  # once
    [event] = feed(shop, event_type="trial_active")["data"]
    assert event["payload"]["event_properties"]["trial_duration"] == "7 days"


def test_trial_active_does_not_fire_for_a_trial_that_converted_first(shop, runtime, clock):
    shop.configure(trial_active_after_days=10)
    shop.create("u")
    shop.set_transaction("u", **subscription(**TRIAL))
    clock.current = clock.current.replace(day=8)
    assert shop.set_transaction("u", **subscription(**CONVERSION)).status_code == 200
    at_day(runtime, clock, 12)
    assert fired(shop) == []  # and a converted trial starts no subscription_active timer


def test_subscription_active_fires_once_even_if_renewal_was_turned_off(shop, runtime, clock):
    shop.configure(subscription_active_after_days=7)
    shop.create("u")
    shop.set_transaction("u", **subscription(expires_at="2025-02-01T10:00:00.000000+0000"))
    clock.current = clock.current.replace(day=3)
    cancelled = subscription(
        expires_at="2025-02-01T10:00:00.000000+0000",
        renew_status=False,
        renew_status_changed_at="2025-01-03T10:00:00.000000+0000",
    )
    assert shop.set_transaction("u", **cancelled).status_code == 200
    at_day(runtime, clock, 8)
    assert fired(shop) == [("subscription_active", "2025-01-08")]
    renewal = subscription(
        store_transaction_id="tx-2",
        purchased_at="2025-02-01T10:00:00.000000+0000",
        expires_at="2025-03-01T10:00:00.000000+0000",
    )
    clock.current = clock.current.replace(month=2, day=1)
    assert shop.set_transaction("u", **renewal).status_code == 200
    clock.current = clock.current + timedelta(days=30)
    purchases_service.fire_due_checks(runtime)
    assert fired(shop) == [("subscription_active", "2025-01-08")]  # the renewal starts no second timer


def test_a_refunded_subscription_is_not_still_active(shop, runtime, clock):
    shop.configure(subscription_active_after_days=7)
    shop.create("u")
    shop.set_transaction("u", **subscription())
    refunded = subscription(refunded_at="2025-01-02T10:00:00.000000+0000", cancellation_reason="refund")
    assert shop.set_transaction("u", **refunded).status_code == 200
    at_day(runtime, clock, 9)
    assert fired(shop) == []


def test_apps_that_do_not_ask_get_no_still_active_events(shop, runtime, clock):
    shop.create("u")
    shop.set_transaction("u", **subscription(**TRIAL))
    at_day(runtime, clock, 7)
    assert fired(shop) == []


def test_only_endpoints_that_name_them_receive_them(shop, runtime, clock):
    shop.configure(subscription_active_after_days=2)
    with Receiver() as everything, Receiver() as named:
        assert shop.admin("POST", "/webhooks/", {"url": everything.url}).status_code == 201
        body = {"url": named.url, "event_types": ["subscription_active"]}
        assert shop.admin("POST", "/webhooks/", body).status_code == 201
        shop.create("u")
        shop.set_transaction("u", **subscription())
        clock.current = clock.current.replace(day=3, hour=11)
        drain(runtime, clock)  # the worker fires the check, then delivers
    assert [event["event_type"] for event in named.events()] == ["subscription_active"]
    assert "subscription_active" not in [event["event_type"] for event in everything.events()]


def test_delays_are_1_to_90_days_and_0_turns_them_off(shop, runtime):
    with pytest.raises(ValueError, match="1 to 90"):
        shop.configure(trial_active_after_days=91)
    assert shop.configure(trial_active_after_days=90)["trial_active_after_days"] == 90
    assert shop.configure(trial_active_after_days=0)["trial_active_after_days"] is None
