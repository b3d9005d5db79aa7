"""Webhook endpoints as the reference's webhook integration has them: a production and a sandbox
URL, each with its Authorization value; its retry rules; renamed events; its options; a test event.
Every delivery goes to a real receiver on loopback."""

import pytest
from support.database import db_snapshot
from support.events import drain
from support.purchases import subscription
from support.receiver import Receiver
from support.serving import operator_env, run, run_json

TRIAL = {
    "offer": {"category": "introductory", "type": "free_trial", "id": None},
    "price": {"country": "US", "currency": "USD", "value": 9.99},
}


@pytest.fixture
def shop(api, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = clock.current.replace(year=2025, month=1, day=1, hour=10)
    return api


def register(api, **body) -> dict:
    response = api.admin("POST", "/webhooks/", body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def deliveries(api, **params) -> list[dict]:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return api.admin("GET", "/deliveries/?" + query).json()["data"]


def test_production_and_sandbox_events_go_to_their_own_urls_with_their_own_authorization(shop, runtime, clock):
    with Receiver() as production, Receiver() as sandbox:
        endpoint = register(
            shop,
            url=production.url,
            sandbox_url=sandbox.url,
            authorization="Bearer live",
            sandbox_authorization="Bearer test",
            event_types=["subscription_started"],
        )
        assert endpoint["url"] == production.url and endpoint["sandbox_url"] == sandbox.url
        assert endpoint["has_authorization"] and endpoint["has_sandbox_authorization"]
        # Each URL got its verification request, with its own Authorization value.
        assert production.received[0]["headers"]["Authorization"] == "Bearer live"
        assert sandbox.received[0]["headers"]["Authorization"] == "Bearer test"
        shop.create("live-user")
        shop.create("test-user")
        assert shop.set_transaction("live-user", **subscription()).status_code == 200
        sandboxed = subscription(environment="Sandbox", store_transaction_id="s-1", store_original_transaction_id="s-1")
        assert shop.set_transaction("test-user", **sandboxed).status_code == 200
        drain(runtime, clock)
    [live] = production.events()
    [test] = sandbox.events()
    assert live["customer_user_id"] == "live-user" and live["event_properties"]["environment"] == "Production"
    assert test["customer_user_id"] == "test-user" and test["event_properties"]["environment"] == "Sandbox"
    assert production.accepted[-1]["headers"]["Authorization"] == "Bearer live"
    assert sandbox.accepted[-1]["headers"]["Authorization"] == "Bearer test"


def test_an_endpoint_with_only_a_sandbox_url_gets_no_production_event(shop, runtime, clock):
    with Receiver() as sandbox:
        register(shop, sandbox_url=sandbox.url, event_types=["subscription_started", "profile_created"])
        shop.create("u")  # profile events are production's
        assert shop.set_transaction("u", **subscription()).status_code == 200
        drain(runtime, clock)
        assert sandbox.events() == [] and deliveries(shop) == []


def test_an_endpoint_needs_a_url(shop, runtime):
    before = db_snapshot(runtime)
    response = shop.admin("POST", "/webhooks/", {"event_types": ["subscription_started"]})
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "url"
    assert db_snapshot(runtime) == before


@pytest.mark.parametrize("answer", ["301", "400", "401", "403", "404"])
def test_an_answer_from_300_to_404_ends_a_delivery_as_refused(shop, runtime, clock, answer):
    with Receiver(script=["ok", answer]) as receiver:
        register(shop, url=receiver.url, event_types=["profile_created"])
        shop.create("u")
        drain(runtime, clock)
        assert len(receiver.received) == 2  # the verification request and one attempt: no retry
    [delivery] = deliveries(shop)
    assert delivery["status"] == "refused" and delivery["next_attempt_at"] is None
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [int(answer)]
    assert [d["delivery_id"] for d in deliveries(shop, status="refused")] == [delivery["delivery_id"]]


@pytest.mark.parametrize("answer", ["405", "429", "500", "503"])
def test_other_answers_are_retried(shop, runtime, clock, answer):
    with Receiver(script=["ok", answer, answer]) as receiver:
        register(shop, url=receiver.url, event_types=["profile_created"])
        shop.create("u")
        drain(runtime, clock)
        assert len(receiver.accepted) == 2  # the verification and the third attempt
    [delivery] = deliveries(shop)
    assert delivery["status"] == "delivered"
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [int(answer), int(answer), 200]


def test_a_refused_delivery_is_replayed(shop, runtime, clock):
    with Receiver(script=["ok", "404"]) as receiver:
        register(shop, url=receiver.url, event_types=["profile_created"])
        shop.create("u")
        drain(runtime, clock)
        replayed = shop.admin("POST", "/deliveries/replay/", {})
        assert replayed.json()["data"] == {"replayed": 1}
        drain(runtime, clock)
        assert [event["event_type"] for event in receiver.events()] == ["profile_created"]
    [delivery] = deliveries(shop)
    assert delivery["status"] == "delivered"


def test_the_receiver_gets_the_names_it_mapped_and_the_feed_keeps_the_references(shop, runtime, clock):
    with Receiver() as receiver:
        endpoint = register(
            shop,
            url=receiver.url,
            event_types=["subscription_started", "access_level_updated"],
            event_names={"subscription_started": "sub_start"},
        )
        assert endpoint["event_names"] == {"subscription_started": "sub_start"}
        shop.create("u")
        shop.set_transaction("u", **subscription())
        drain(runtime, clock)
    assert [event["event_type"] for event in receiver.events()] == ["sub_start", "access_level_updated"]
    feed = shop.client.get("/api/admin/v1/events/", headers=shop.headers()).json()["data"]
    assert "subscription_started" in [event["event_type"] for event in feed]


@pytest.mark.parametrize(
    ("names", "code"),
    [({"nope": "x"}, "invalid_enumeration_member"), ({"trial_started": ""}, "base_error")],
)
def test_names_of_unknown_types_or_empty_names_are_refused(shop, runtime, names, code):
    before = db_snapshot(runtime)
    response = shop.admin("POST", "/webhooks/", {"url": "http://127.0.0.1:9/", "event_names": names})
    assert response.status_code == 400 and response.json()["error_code"] == code, response.text
    assert response.json()["errors"][0]["source"].startswith("event_names")
    assert db_snapshot(runtime) == before


def test_user_attributes_and_attribution_are_sent_only_when_asked_for(shop, runtime, clock):
    with Receiver() as full, Receiver() as bare:
        register(shop, url=full.url, event_types=["subscription_started"])
        register(
            shop,
            url=bare.url,
            event_types=["subscription_started"],
            send_user_attributes=False,
            send_attribution=False,
        )
        assert shop.create("u", custom_attributes=[{"key": "plan", "value": "gold"}]).status_code == 200
        shop.set_transaction("u", **subscription())
        drain(runtime, clock)
    [sent] = full.events()
    assert sent["user_attributes"] == {"plan": "gold"} and "attributions" in sent
    [stripped] = bare.events()
    assert "user_attributes" not in stripped and "attributions" not in stripped
    assert stripped["event_properties"] == sent["event_properties"]


def test_historical_events_are_left_out_when_asked(shop, runtime, clock):
    """A subscription bought before the profile was made (the app before subledger) sends its
    events only to endpoints that do not exclude historical events."""
    with Receiver() as everything, Receiver() as recent:
        register(shop, url=everything.url, event_types=["subscription_started", "subscription_renewed"])
        register(
            shop,
            url=recent.url,
            event_types=["subscription_started", "subscription_renewed"],
            exclude_historical_events=True,
        )
        clock.current = clock.current.replace(month=1, day=20)
        shop.create("u")  # installed on 2025-01-20; bought on 2025-01-01
        shop.set_transaction("u", **subscription())
        renewal = subscription(
            store_transaction_id="tx-2",
            purchased_at="2025-02-01T10:00:00.000000+0000",
            expires_at="2025-03-01T10:00:00.000000+0000",
        )
        shop.set_transaction("u", **renewal)
        drain(runtime, clock)
    assert [event["event_type"] for event in everything.events()] == ["subscription_started", "subscription_renewed"]
    assert [event["event_type"] for event in recent.events()] == ["subscription_renewed"]


def test_an_endpoint_is_changed_and_a_changed_url_is_verified_first(shop, runtime, clock):
    with Receiver() as first, Receiver(script=["fail"]) as refusing, Receiver() as second:
        endpoint = register(shop, url=first.url, event_types=["profile_created"])
        path = f"/webhooks/{endpoint['endpoint_id']}/"
        before = db_snapshot(runtime)
        failed = shop.admin("PATCH", path, {"url": refusing.url})
        assert failed.status_code == 400 and failed.json()["error_code"] == "webhook_verification_failed"
        assert db_snapshot(runtime) == before
        changed = shop.admin(
            "PATCH", path, {"url": second.url, "send_trial_price": True, "event_names": {"profile_created": "hello"}}
        )
        assert changed.status_code == 200, changed.text
        data = changed.json()["data"]
        assert data["url"] == second.url and data["send_trial_price"] and data["event_names"]
        assert data["send_user_attributes"]  # not named: as it was
        assert shop.admin("GET", path).json()["data"] == data
        assert shop.admin("PATCH", path, {"url": None}).status_code == 400  # it would have no URL
        shop.create("u")
        drain(runtime, clock)
        assert [event["event_type"] for event in second.events()] == ["hello"]
        assert first.events() == []


def test_a_test_event_is_sent_as_a_delivery_would_be(shop, runtime):
    with Receiver(script=["ok", "404"]) as receiver:
        endpoint = register(
            shop, url=receiver.url, authorization="Bearer x", event_names={"trial_started": "trial_began"}
        )
        path = f"/webhooks/{endpoint['endpoint_id']}/test/"
        answered = shop.admin("POST", path, {"event_type": "trial_started"})
        assert answered.status_code == 200, answered.text
        assert answered.json()["data"]["status_code"] == 404 and answered.json()["data"]["error"] is None
        [request] = receiver.received[1:]
        assert request["json"]["event_type"] == "trial_began"
        assert request["headers"]["Authorization"] == "Bearer x"
        assert shop.admin("POST", path, {"target": "sandbox"}).status_code == 400  # it has no sandbox URL
    assert deliveries(shop) == []  # nothing recorded


@pytest.mark.slow  # runs the command line in processes
def test_the_webhooks_cli(shop, runtime, clock, database_url, tmp_path):
    env = operator_env(tmp_path, database_url)
    with Receiver(script=["ok", "ok", "404"]) as production, Receiver() as sandbox:
        created = run_json(
            env,
            "webhooks",
            "create",
            "--app",
            shop.app_id,
            "--url",
            production.url,
            "--sandbox-url",
            sandbox.url,
            "--event-type",
            "profile_created",
            "--event-name",
            "profile_created=new_user",
            "--no-send-attribution",
        )
        assert created["event_names"] == {"profile_created": "new_user"} and created["send_attribution"] is False
        assert created["signing_secret"].startswith("whsec_")
        shop.create("u")
        drain(runtime, clock)
        [sent] = production.events()
        assert sent["event_type"] == "new_user" and "attributions" not in sent
        shop.create("v")  # refused (404) by the receiver
        drain(runtime, clock)
        listed = run_json(env, "deliveries", "list", "--app", shop.app_id, "--status", "refused")
        assert len(listed) == 1
        replayed = run(env, "deliveries", "replay", "--app", shop.app_id)
        assert "replayed 1" in replayed.stderr
    bad = run(
        env, "webhooks", "create", "--app", shop.app_id, "--url", production.url, "--event-name", "x", check=False
    )
    assert bad.returncode != 0 and "TYPE=NAME" in bad.stderr
