"""The Web API through HTTP with an app's public key: the reference's examples, the paywall a
profile sees, views, attribution and where it travels, CORS, and its own limits."""

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from support import contract
from support.api import new_app
from support.database import db_snapshot
from support.purchases import subscription
from support.serving import operator_env, run
from support.web import WEB, web

from subledger.app import create_app


def test_the_get_paywall_example(shop):
    response = web(shop, "/paywall/", contract.WEB_PAYWALL)
    assert response.status_code == 200, response.text
    contract.check(contract.WEB_PAYWALL_RESPONSE, response.json())
    shown = response.json()
    assert (shown["placement_id"], shown["paywall_name"]) == ("PaywallPlacementId", "1 week + 1 month")
    assert shown["variation_id"] == shop.paywall["variation_id"] and "ab_test_name" not in shown
    assert [p["vendor_product_id"] for p in shown["products"]] == ["weekly", "monthly"]  # the store asked for
    assert shown["remote_config"] == {"lang": "en", "data": '{"default_product_number":1,"soft_paywall":false}'}
    on_the_web = web(shop, "/paywall/", {**contract.WEB_PAYWALL, "store": "stripe"}).json()
    assert [p["vendor_product_id"] for p in on_the_web["products"]] == ["price_monthly"]


def test_offer_eligibility_is_the_profiles(shop):
    first = {p["vendor_product_id"]: p for p in web(shop, "/paywall/", contract.WEB_PAYWALL).json()["products"]}
    assert first["monthly"]["introductory_offer_eligibility"] is True
    assert first["monthly"]["promotional_offer_eligibility"] is False
    assert shop.set_transaction("user123", **subscription()).status_code == 200
    after = {p["vendor_product_id"]: p for p in web(shop, "/paywall/", contract.WEB_PAYWALL).json()["products"]}
    assert after["monthly"]["introductory_offer_eligibility"] is False  # bought it before
    assert after["monthly"]["promotional_offer_eligibility"] is True
    assert after["weekly"]["introductory_offer_eligibility"] is True


def test_the_visit_example_and_views_that_feed_the_metrics(shop, runtime):
    before = db_snapshot(runtime)
    unknown = web(shop, "/paywall/visit/", contract.WEB_VISIT)  # the example's variation is nobody's
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "variation_id_not_found"
    contract.check(contract.WEB_ERROR_RESPONSE, unknown.json())
    assert db_snapshot(runtime) == before
    visit = {**contract.WEB_VISIT, "variation_id": shop.paywall["variation_id"]}
    for _ in range(2):
        recorded = web(shop, "/paywall/visit/", visit)
        assert (recorded.status_code, recorded.json()) == (201, {})
    [row] = [
        r
        for r in shop.admin("GET", "/paywalls/metrics/").json()["data"]
        if r["paywall_id"] == shop.paywall["paywall_id"]
    ]
    assert (row["views"], row["viewers"]) == (2, 1)


def test_the_attribution_example_and_where_it_travels(shop, runtime, database_url, tmp_path):
    added = web(shop, "/attribution/", contract.WEB_ATTRIBUTION)
    assert (added.status_code, added.json()) == (201, {})
    later = {**contract.WEB_ATTRIBUTION, "status": "non_organic", "channel": "Google Ads"}
    assert web(shop, "/attribution/", later).status_code == 201
    shop.grant("user123", access_level_id="premium")  # an event after it
    feed = shop.client.get("/api/admin/v1/events/", headers=shop.headers()).json()["data"]
    attributions = feed[-1]["payload"]["attributions"]
    assert list(attributions) == ["custom"]
    assert attributions["custom"]["status"] == "non_organic" and attributions["custom"]["channel"] == "Google Ads"
    assert attributions["custom"]["network_user_id"] == "attribution_user_id_value"
    audience = {"audience_id": "ads", "rules": [{"field": "attribution.channel", "op": "eq", "value": "Google Ads"}]}
    assert shop.admin("POST", "/audiences/", audience).status_code == 201
    ad_paywall = shop.admin("POST", "/paywalls/", {"title": "From ads"}).json()["data"]
    targets = [
        {"audience_id": "ads", "paywall_id": ad_paywall["paywall_id"]},
        {"paywall_id": shop.paywall["paywall_id"]},
    ]
    shop.admin("PUT", "/placements/", {"placement_id": "PaywallPlacementId", "targets": targets})
    assert web(shop, "/paywall/", contract.WEB_PAYWALL).json()["paywall_name"] == "From ads"
    exported = run(operator_env(tmp_path, database_url), "export", "--app", shop.app_id, "profiles", "--format", "csv")
    [row] = csv.DictReader(io.StringIO(exported.stdout))
    assert (row["attribution_status"], row["attribution_channel"]) == ("non_organic", "Google Ads")


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "source"),
    [
        (
            "/paywall/",
            {**contract.WEB_PAYWALL, "customer_user_id": "nobody"},
            404,
            "profile_does_not_exist",
            "customer_user_id",
        ),
        (
            "/paywall/",
            {**contract.WEB_PAYWALL, "customer_user_id": None, "profile_id": "x"},
            404,
            "profile_does_not_exist",
            "profile_id",
        ),
        (
            "/paywall/",
            {**contract.WEB_PAYWALL, "placement_id": "nowhere"},
            404,
            "placement_does_not_exist",
            "placement_id",
        ),
        ("/paywall/", {"store": "app_store", "placement_id": "p"}, 400, "base_error", "non_field_errors"),
        ("/paywall/", {"customer_user_id": "user123", "placement_id": "p"}, 400, "base_error", "store"),
        ("/paywall/visit/", {**contract.WEB_VISIT, "visited_at": "yesterday"}, 400, "datetime", "visited_at"),
        ("/paywall/visit/", {**contract.WEB_VISIT, "variation_id": "v1"}, 400, "base_error", "variation_id"),
        ("/attribution/", {**contract.WEB_ATTRIBUTION, "status": "paid"}, 400, "invalid_enumeration_member", "status"),
        (
            "/attribution/",
            {**contract.WEB_ATTRIBUTION, "customer_user_id": "nobody"},
            404,
            "profile_does_not_exist",
            "customer_user_id",
        ),
        ("/attribution/", b"{not json", 400, "parse_error", "non_field_errors"),
    ],
)
def test_documented_errors_change_nothing(shop, runtime, path, body, status, code, source):
    before = db_snapshot(runtime)
    response = web(shop, path, body)
    assert response.status_code == status, response.text
    contract.check(contract.WEB_ERROR_RESPONSE, response.json())
    assert (response.json()["error_code"], response.json()["errors"][0]["source"]) == (code, source)
    assert db_snapshot(runtime) == before


def test_a_page_may_call_only_an_app_that_lists_its_origin(shop, runtime, client):
    other = new_app(runtime, client, "Other")
    assert other.admin("PUT", "/web-api/origins/", {"origins": ["https://other.example"]}).status_code == 200
    listed = shop.admin("PUT", "/web-api/origins/", {"origins": ["HTTPS://Shop.Example", "http://localhost:8080"]})
    assert listed.json()["data"]["origins"] == ["http://localhost:8080", "https://shop.example"]
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    answered = client.options(WEB + "/attribution/", headers=preflight)
    assert answered.status_code == 204 and answered.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in answered.headers["access-control-allow-headers"]
    stranger = client.options(WEB + "/attribution/", headers={**preflight, "Origin": "https://evil.example"})
    assert stranger.status_code == 403 and "access-control-allow-origin" not in stranger.headers

    allowed = web(shop, "/attribution/", contract.WEB_ATTRIBUTION, origin="https://shop.example")
    assert allowed.status_code == 201 and allowed.headers["access-control-allow-origin"] == "https://shop.example"
    before = db_snapshot(runtime)
    elsewhere = web(shop, "/attribution/", contract.WEB_ATTRIBUTION, origin="https://other.example")  # another app's
    assert elsewhere.status_code == 403 and elsewhere.json()["error_code"] == "origin_not_allowed"
    assert db_snapshot(runtime) == before
    refused = shop.admin("PUT", "/web-api/origins/", {"origins": ["https://shop.example/path"]})
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "origins"


def test_the_web_api_has_its_own_rate_limits_and_body_limit(shop, runtime, clock):
    runtime.settings.web_api_rate_per_address = 1.0  # a burst of 2, then one a second
    with TestClient(create_app(runtime)) as client:
        shop.client = client
        statuses = [web(shop, "/attribution/", contract.WEB_ATTRIBUTION).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        throttled = web(shop, "/attribution/", contract.WEB_ATTRIBUTION)
        assert throttled.json()["error_code"] == "rate_limited" and throttled.headers["retry-after"] == "1"
        assert shop.get("user123").status_code == 200  # the server-side API is not the Web API's to limit
        clock.advance(seconds=1)
        assert web(shop, "/attribution/", contract.WEB_ATTRIBUTION).status_code == 201
        clock.advance(seconds=60)
        large = {**contract.WEB_ATTRIBUTION, "creative": "x" * 20_000}
        assert web(shop, "/attribution/", large).status_code == 413


@pytest.mark.slow  # runs the command line in processes
def test_the_origins_cli(api, runtime, database_url, tmp_path):
    env = operator_env(tmp_path, database_url)
    shown = run(env, "apps", "web-origins", "--app", api.app_id, "--origin", "https://shop.example")
    assert json.loads(shown.stdout) == {"app_id": api.app_id, "origins": ["https://shop.example"]}
    assert json.loads(run(env, "apps", "web-origins", "--app", api.app_id).stdout)["origins"] == [
        "https://shop.example"
    ]
    refused = run(env, "apps", "web-origins", "--app", api.app_id, "--origin", "shop", check=False)
    assert refused.returncode != 0 and "not an origin" in refused.stderr
