"""Grants and revocations made from a profile's page: the API's rules, ledger rows and events."""

import re
import uuid

import pytest
from support.api import new_app
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.database import db_snapshot
from support.purchases import T1, T2, subscription

from subledger.dashboard import service as dashboard_service
from subledger.events import service as events_service


@pytest.fixture
def shop(api, runtime, client):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    api.access_level("gold")
    for user in ("alice", "twin"):  # twin gets through the API what alice gets on the page
        assert api.create(user).status_code == 200
    sign_in(client)
    return api


def page(client, api, user: str):
    profile_id = api.get(user).json()["data"]["profile_id"]
    answer = client.get(f"/dashboard/apps/{api.app_id}/profiles/{profile_id}/")
    assert answer.status_code == 200
    return profile_id, answer.text


def post(client, api, profile_id: str, action: str, html: str, **fields):
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    path = f"/dashboard/apps/{api.app_id}/profiles/{profile_id}/{action}"
    return client.post(path, data={**fields, "csrf": csrf}, follow_redirects=False)


def event_types(runtime, api, profile_id: str) -> list[str]:
    feed = events_service.feed(runtime, uuid.UUID(api.app_id), None, 100, uuid.UUID(profile_id), None, None, None)
    return [event["event_type"] for event in feed["data"]]


def without_trail(runtime) -> dict:
    return {name: rows for name, rows in db_snapshot(runtime).items() if name != "operator_actions"}


def test_a_grant_from_the_page_is_the_apis_grant(shop, client, runtime):
    alice, html = page(client, shop, "alice")
    assert "Grant" in html and "<option>gold</option>" in html
    answer = post(client, shop, alice, "grant", html, access_level_id="gold", expires_at="2025-03-01T12:30")
    assert (
        answer.status_code == 303
        and "notice=Granted%20gold%20until%202025-03-01%2012%3A30%20UTC." in (answer.headers["location"])
    )
    by_api = shop.grant("twin", access_level_id="gold", expires_at="2025-03-01T12:30:00Z").json()["data"]
    granted = shop.get("alice").json()["data"]
    assert granted["access_levels"][0]["expires_at"] == by_api["access_levels"][0]["expires_at"]
    assert granted["access_levels"][0]["access_level_id"] == "gold"
    twin = by_api["profile_id"]
    assert event_types(runtime, shop, alice) == event_types(runtime, shop, twin) != []
    _, shown = page(client, shop, "alice")
    assert 'class="badge active"' in shown and "Revoke now" in shown


def test_a_revocation_from_the_page_is_the_apis_revocation(shop, client, runtime, clock):
    for user in ("alice", "twin"):
        shop.grant(user, access_level_id="gold")
    alice, html = page(client, shop, "alice")
    clock.advance(hours=1)
    assert post(client, shop, alice, "revoke", html, access_level_id="gold").status_code == 303
    by_api = shop.revoke("twin", access_level_id="gold").json()["data"]
    revoked = shop.get("alice").json()["data"]["access_levels"]
    assert revoked[0]["expires_at"] == by_api["access_levels"][0]["expires_at"]
    assert event_types(runtime, shop, alice) == event_types(runtime, shop, by_api["profile_id"])
    _, shown = page(client, shop, "alice")
    assert 'class="badge expired"' in shown and "Revoke now" not in shown


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"access_level_id": "platinum"}, "access%20level"),  # no such level
        ({"access_level_id": "gold", "expires_at": "tomorrow"}, "Datetime%20has%20wrong%20format"),
    ],
)
def test_a_refused_grant_says_why_and_changes_nothing(shop, client, runtime, fields, why):
    alice, html = page(client, shop, "alice")
    before = without_trail(runtime)
    answer = post(client, shop, alice, "grant", html, **fields)
    assert answer.status_code == 303 and "?error=" in answer.headers["location"]
    assert why in answer.headers["location"]
    assert without_trail(runtime) == before
    assert client.get(answer.headers["location"]).status_code == 200


def test_a_grant_without_a_level_is_refused_before_anything(shop, client, runtime):
    alice, html = page(client, shop, "alice")
    before = without_trail(runtime)
    assert post(client, shop, alice, "grant", html, access_level_id="").status_code == 400
    assert without_trail(runtime) == before


def test_another_apps_profile_cannot_be_changed_from_this_apps_page(shop, client, runtime):
    other = new_app(runtime, client, "Other")
    other.create("mallory")
    mallory = other.get("mallory").json()["data"]["profile_id"]
    _, html = page(client, shop, "alice")
    before = without_trail(runtime)
    answer = post(client, shop, mallory, "grant", html, access_level_id="premium")
    assert "?error=" in answer.headers["location"]
    assert without_trail(runtime) == before


def test_the_page_lists_every_transaction_not_only_each_chains_latest(shop, client):
    shop.product("monthly", "gold", "P1M")
    first = subscription(store_transaction_id="first-1", store_original_transaction_id="chain-1")
    renewal = {**first, "store_transaction_id": "renewal-2", "purchased_at": T1, "expires_at": T2}
    for body in (first, renewal):
        assert shop.set_transaction("alice", **body).status_code == 200
    _, html = page(client, shop, "alice")
    ledger = html[html.index('<table class="ledger">') :]
    assert ledger.index("renewal-2") < ledger.index("first-1")  # newest first
    subscriptions = html[html.index('<table class="subscriptions">') : html.index('<table class="ledger">')]
    assert "renewal-2" in subscriptions and "first-1" not in subscriptions


def test_a_refund_recorded_from_the_page_ends_the_level_and_refunds_its_transaction(shop, client, runtime, clock):
    shop.product("monthly", "gold", "P1M")
    assert shop.set_transaction("alice", **subscription(store_product_id="monthly")).status_code == 200
    alice, html = page(client, shop, "alice")
    assert "Revoke and record a refund" in html
    clock.advance(hours=2)
    answer = post(client, shop, alice, "refund", html, access_level_id="gold")
    assert "notice=Revoked%20gold%20and%20recorded" in answer.headers["location"]
    refunded = shop.get("alice").json()["data"]
    assert refunded["subscriptions"][0]["refunded_at"] is not None
    assert refunded["access_levels"][0]["expires_at"] == refunded["subscriptions"][0]["refunded_at"]
    assert "subscription_refunded" in event_types(runtime, shop, alice)
