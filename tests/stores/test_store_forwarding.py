"""Raw store notifications forwarded: every verified App Store and Google Play notification goes,
as the store sent it, to a URL of the app's, delivered and retried as webhooks are."""

import json
import uuid
from datetime import timedelta

import pytest
from support.app_store import START, AppStore, renewal, transaction
from support.events import drain
from support.play_store import Play, purchase
from support.receiver import Receiver
from support.serving import operator_env, run
from test_play_store import START as PLAY_START

from subledger.events import service as events_service
from subledger.stores import service as stores_service


def forward_to(api, runtime, store_name: str, url: str, authorization: str | None = None) -> dict:
    return stores_service.set_forwarding(runtime, uuid.UUID(api.app_id), store_name, url, authorization)


def forwards(api, runtime, status=None) -> list[dict]:
    return events_service.list_forwards(runtime, uuid.UUID(api.app_id), status)


def test_app_store_notifications_are_forwarded_as_apple_sent_them(store: AppStore, api, runtime, clock):
    with Receiver() as receiver:
        forward_to(api, runtime, "app_store", receiver.url, "Bearer mine")
        payload = store.payload("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal(), START)
        raw = json.dumps({"signedPayload": store.chain.sign(payload)}).encode()
        response = api.client.post(store.url, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 200 and response.json()["status"] == "applied"
        again = api.client.post(store.url, content=raw, headers={"Content-Type": "application/json"})
        assert again.json()["status"] == "duplicate"  # not forwarded twice
        forged = api.client.post(store.url, json={"signedPayload": "not.a.jws"})
        assert forged.status_code == 400  # refused: not forwarded
        drain(runtime, clock)
    [sent] = receiver.received
    assert sent["raw"] == raw  # byte for byte
    assert sent["headers"]["Authorization"] == "Bearer mine"
    assert "Subledger-Signature" not in sent["headers"]
    [row] = forwards(api, runtime)
    assert row["store"] == "app_store" and row["status"] == "delivered"
    assert sent["headers"]["Subledger-Event-Id"] == row["forward_id"]


def test_play_notifications_are_forwarded_as_pubsub_pushed_them(play: Play, api, runtime, clock):
    play.fake.subscriptions["tok1"] = purchase()
    with Receiver() as receiver:
        forward_to(api, runtime, "play_store", receiver.url)
        data = {
            "version": "1.0",
            "packageName": "com.example.app",
            "eventTimeMillis": str(int(PLAY_START.timestamp() * 1000)),
            "subscriptionNotification": {"version": "1.0", "notificationType": 4, "purchaseToken": "tok1"},
        }
        assert play.push(data).status_code == 200
        drain(runtime, clock)
    [sent] = receiver.received
    pushed = json.loads(sent["raw"])
    assert pushed["subscription"] == "projects/p/subscriptions/play" and "data" in pushed["message"]


def test_a_refusing_receiver_ends_the_forward_and_it_can_be_replayed(store: AppStore, api, runtime, clock):
    with Receiver(script=["fail", "404", "ok"]) as receiver:
        forward_to(api, runtime, "app_store", receiver.url)
        store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal())
        drain(runtime, clock)  # 500, retried; then 404: refused
        [row] = forwards(api, runtime)
        assert row["status"] == "refused" and row["attempts"] == 2 and row["last_status_code"] == 404
        assert events_service.replay_forwards(runtime, uuid.UUID(api.app_id)) == 1
        drain(runtime, clock)
    assert [row["status"] for row in forwards(api, runtime)] == ["delivered"]
    assert len(receiver.received) == 3


def test_forwarding_stops_when_turned_off(store: AppStore, api, runtime, clock):
    with Receiver() as receiver:
        forward_to(api, runtime, "app_store", receiver.url)
        stores_service.set_forwarding(runtime, uuid.UUID(api.app_id), "app_store", None)
        store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal())
        drain(runtime, clock)
    assert receiver.received == [] and forwards(api, runtime) == []


def test_forward_urls_are_checked_as_webhook_urls_are(store: AppStore, api, runtime):
    runtime.settings.webhook_allow_private_networks = False
    with pytest.raises(ValueError, match="not a public address"):
        forward_to(api, runtime, "app_store", "http://169.254.169.254/latest/")
    with pytest.raises(ValueError, match="authorization value"):
        forward_to(api, runtime, "app_store", "https://user:pass@hooks.example.com/")
    with pytest.raises(ValueError, match="not configured"):
        forward_to(api, runtime, "play_store", "http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="forwarded"):
        forward_to(api, runtime, "stripe", "http://127.0.0.1:9/")


@pytest.mark.slow  # runs the command line in processes
def test_the_forward_cli(store: AppStore, api, runtime, database_url, tmp_path):
    env = operator_env(tmp_path, database_url)
    with Receiver() as receiver:
        shown = run(env, "stores", "forward", "--app", api.app_id, "--store", "app_store", "--url", receiver.url)
        assert json.loads(shown.stdout) == {
            "store": "app_store",
            "forward_url": receiver.url,
            "has_authorization": False,
        }
        both = run(
            env, "stores", "forward", "--app", api.app_id, "--store", "app_store", "--off", "--url", "x", check=False
        )
        assert both.returncode != 0
        off = run(env, "stores", "forward", "--app", api.app_id, "--store", "app_store", "--off")
        assert json.loads(off.stdout)["forward_url"] is None


def test_delivered_forwards_are_pruned_and_the_others_kept(store: AppStore, api, runtime, clock):
    with Receiver() as receiver:
        forward_to(api, runtime, "app_store", receiver.url)
        store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal())
        drain(runtime, clock)
        store.notify("DID_RENEW", transaction(1, appAccountToken="u1"), renewal())  # not sent yet
    assert sorted(row["status"] for row in forwards(api, runtime)) == ["delivered", "pending"]
    later = clock.now() + timedelta(days=1)
    assert events_service.prune_forwards(runtime, later, uuid.UUID(api.app_id)) == 1
    assert [row["status"] for row in forwards(api, runtime)] == ["pending"]
