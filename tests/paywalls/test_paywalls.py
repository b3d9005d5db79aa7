"""Paywalls: the contract endpoints, placements with audiences and A/B tests, views and metrics."""

import json
import uuid

import pytest
from support.api import BASE
from support.database import db_snapshot
from support.paywalls import paywall, place
from support.purchases import subscription

from subledger.core.fields import MAX_NESTING
from subledger.paywalls import rules


def configs(**by_locale) -> list[dict]:
    """Remote configs as the contract sends them: each locale's data a JSON string."""
    return [{"locale": locale, "data": json.dumps(data)} for locale, data in by_locale.items()]


def shown(api, user, placement="onboarding", **params):
    return api.client.get(f"{BASE}/placements/{placement}/paywall/", params=params, headers=api.headers(user))


def contract_get(api, paywall_id: str):
    return api.client.get(f"{BASE}/paywalls/{paywall_id}/", headers=api.headers())


def test_the_contract_paywall_object(studio):
    made = paywall(
        studio,
        "Spring sale",
        ("yearly", "monthly"),
        configs(en={"title": "Hi"}, fr={"title": "Salut"}),
        web_purchase_url="https://example.com/purchase",
    )
    response = contract_get(studio, made["paywall_id"])
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "title",
        "paywall_id",
        "use_paywall_builder",
        "use_paywall_builder_legacy",
        "updated_at",
        "created_at",
        "state",
        "is_deleted",
        "web_purchase_url",
        "products",
        "remote_configs",
        "main_screenshot",
    ]
    assert (body["title"], body["state"], body["is_deleted"]) == ("Spring sale", "draft", False)
    assert (body["use_paywall_builder"], body["use_paywall_builder_legacy"], body["main_screenshot"]) == (
        False,
        False,
        None,
    )
    assert body["web_purchase_url"] == "https://example.com/purchase"
    assert body["products"] == [
        {"product_id": studio.products["yearly"], "title": "Yearly", "product_set": "annual", "offer": None},
        {"product_id": studio.products["monthly"], "title": "Monthly", "product_set": "monthly", "offer": None},
    ]
    assert body["remote_configs"] == [
        {"locale": "en", "data": '{"title":"Hi"}'},
        {"locale": "fr", "data": '{"title":"Salut"}'},
    ]
    assert made == {**body, "variation_id": made["variation_id"]}  # the admin API answers the same object


def test_a_paywall_is_live_while_a_placement_shows_it(studio):
    made = paywall(studio, "Live")
    other = paywall(studio, "Other")
    place(studio, "p", [{"paywall_id": made["paywall_id"]}])
    assert contract_get(studio, made["paywall_id"]).json()["state"] == "live"
    assert contract_get(studio, other["paywall_id"]).json()["state"] == "draft"
    refused = studio.admin("PATCH", f"/paywalls/{made['paywall_id']}/", {"state": "archived"})
    assert refused.status_code == 400 and refused.json()["error_code"] == "paywall_in_use"
    place(studio, "p", [])
    assert contract_get(studio, made["paywall_id"]).json()["state"] == "inactive"
    archived = studio.admin("PATCH", f"/paywalls/{made['paywall_id']}/", {"state": "archived"})
    assert archived.status_code == 200 and archived.json()["data"]["state"] == "archived"
    placing = studio.admin(
        "PUT", "/placements/", {"placement_id": "p", "targets": [{"paywall_id": made["paywall_id"]}]}
    )
    assert placing.status_code == 400 and placing.json()["errors"][0]["source"] == "targets.0.paywall_id"
    live = studio.admin("PATCH", f"/paywalls/{made['paywall_id']}/", {"state": "live"})
    assert live.status_code == 400 and live.json()["errors"][0]["source"] == "state"
    restored = studio.admin(
        "PATCH", f"/paywalls/{made['paywall_id']}/", {"state": "inactive", "web_purchase_url": None}
    )
    assert restored.json()["data"]["state"] == "inactive" and restored.json()["data"]["web_purchase_url"] is None


def test_unknown_paywall_is_404(studio):
    for paywall_id in (str(uuid.uuid4()), "not-a-uuid"):
        for response in (
            contract_get(studio, paywall_id),
            studio.client.put(
                f"{BASE}/paywalls/{paywall_id}/", json={"remote_configs": configs(en={})}, headers=studio.headers()
            ),
        ):
            assert response.status_code == 404
            assert response.json() == {
                "errors": [{"source": None, "errors": ["Paywall not found"]}],
                "error_code": "paywall_does_not_exist",
                "status_code": 404,
            }


def test_put_replaces_every_locales_remote_config(studio, runtime):
    made = paywall(studio, "P", remote_configs=configs(en={"old": "1"}, de={"x": "y"}))
    url = f"{BASE}/paywalls/{made['paywall_id']}/"
    sent = [{"locale": "en", "data": '{"title": "Premium Features", "subtitle": "Unlock all premium content"}'}]
    response = studio.client.put(url, json={"remote_configs": sent}, headers=studio.headers())
    assert response.status_code == 200, response.text
    assert response.json()["remote_configs"] == [
        {"locale": "en", "data": '{"title":"Premium Features","subtitle":"Unlock all premium content"}'}
    ]
    assert contract_get(studio, made["paywall_id"]).json()["remote_configs"] == response.json()["remote_configs"]
    cleared = studio.client.put(url, json={"remote_configs": []}, headers=studio.headers())
    assert cleared.status_code == 200 and cleared.json()["remote_configs"] == []


@pytest.mark.parametrize(
    ("body", "source"),
    [
        ({}, "remote_configs"),
        ({"remote_configs": None}, "remote_configs"),
        ({"remote_configs": [{"locale": "en"}]}, "remote_configs.0.data"),
        ({"remote_configs": [{"locale": "en", "data": {"title": "an object, not a string"}}]}, "remote_configs.0.data"),
        ({"remote_configs": [{"locale": "en", "data": "not json"}]}, "remote_configs.0.data"),
        ({"remote_configs": [{"locale": "en", "data": "[1, 2]"}]}, "remote_configs.0.data"),
        ({"remote_configs": [{"locale": "en", "data": "NaN"}]}, "remote_configs.0.data"),
        ({"remote_configs": [{"locale": "e n", "data": "{}"}]}, "remote_configs.0.locale"),
        ({"remote_configs": [{"locale": "en", "data": "{}"}, {"locale": "en", "data": "{}"}]}, "remote_configs"),
    ],
)
def test_bad_remote_configs_are_400_and_change_nothing(studio, runtime, body, source):
    made = paywall(studio, "P", remote_configs=configs(en={"kept": True}))
    before = db_snapshot(runtime)
    response = studio.client.put(f"{BASE}/paywalls/{made['paywall_id']}/", json=body, headers=studio.headers())
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"] == source
    assert db_snapshot(runtime) == before


def test_the_list_pages_as_the_contract_does(studio, clock):
    titles = ["Alpha", "beta", "Gamma", "delta", "Epsilon"]
    for title in titles:
        paywall(studio, title)
        clock.advance(seconds=1)  # oldest first
    first = studio.client.get(f"{BASE}/paywalls/", params={"page[size]": 2}, headers=studio.headers()).json()
    assert list(first) == ["data", "meta"]
    assert first["meta"] == {"pagination": {"count": 5, "page": 1, "pages": 3}}
    assert [item["title"] for item in first["data"]] == ["Alpha", "beta"]
    assert "remote_configs" not in first["data"][0]  # a list item has none
    pages = [
        studio.client.get(
            f"{BASE}/paywalls/", params={"page[number]": n, "page[size]": 2}, headers=studio.headers()
        ).json()
        for n in (2, 3, 4)
    ]
    assert [[item["title"] for item in page["data"]] for page in pages] == [["Gamma", "delta"], ["Epsilon"], []]
    assert pages[2]["meta"]["pagination"] == {"count": 5, "page": 4, "pages": 3}
    every = studio.client.get(f"{BASE}/paywalls/", headers=studio.headers()).json()
    assert [item["title"] for item in every["data"]] == titles and every["meta"]["pagination"]["pages"] == 1


def test_an_app_without_paywalls_has_one_empty_page(api):
    listed = api.client.get(f"{BASE}/paywalls/", headers=api.headers()).json()
    assert listed == {"data": [], "meta": {"pagination": {"count": 0, "page": 1, "pages": 1}}}


@pytest.mark.parametrize(
    ("params", "source"),
    [
        ({"page[number]": 0}, "page_number"),
        ({"page[number]": "x"}, "page_number"),
        ({"page[number]": "\u00b2"}, "page_number"),  # a digit to str.isdigit(), not to int()
        ({"page[number]": "9" * 5000}, "page_number"),  # more digits than int() converts
        ({"page[size]": 101}, "page_size"),
        ({"page[size]": 0}, "page_size"),
        ({"page[size]": "-5"}, "page_size"),
    ],
)
def test_bad_list_parameters_are_400(studio, params, source):
    response = studio.client.get(f"{BASE}/paywalls/", params=params, headers=studio.headers())
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error" and response.json()["errors"][0]["source"] == source
    if source == "page_size":
        assert response.json()["errors"][0]["errors"] == ["Invalid page_size parameter. Must be between 1 and 100."]


def test_a_web_purchase_url_is_an_http_url(studio, runtime):
    before = db_snapshot(runtime)
    for url in ("ftp://example.com/x", "example.com", "https://", "https://example.com/" + "a" * 2048):
        refused = studio.admin("POST", "/paywalls/", {"title": "Web", "web_purchase_url": url})
        assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "web_purchase_url", url
    assert db_snapshot(runtime) == before


def nested(levels: int) -> dict | int:
    return {"next": nested(levels - 1)} if levels else 1


def test_free_form_values_that_could_not_be_stored_are_refused(studio, runtime):
    deepest = paywall(studio, "Deep", remote_configs=configs(en={"layout": nested(MAX_NESTING)}))
    assert json.loads(deepest["remote_configs"][0]["data"])["layout"] == nested(MAX_NESTING)
    before = db_snapshot(runtime)
    too_deep = studio.admin("POST", "/paywalls/", {"title": "Deeper", "remote_configs": configs(en={"x": nested(33)})})
    assert too_deep.status_code == 400 and too_deep.json()["errors"][0]["source"] == "remote_configs.0.data"
    rule = {"field": "custom_attribute.level", "op": "eq", "value": nested(300)}
    too_deep = studio.admin("POST", "/audiences/", {"audience_id": "deep", "rules": [rule]})
    assert too_deep.status_code == 400 and too_deep.json()["errors"][0]["source"] == "rules.0.value"
    for wide in (2**64, -(2**63) - 1, 10**40):  # a double would keep them rounded, and orjson writes none
        too_wide = studio.admin("POST", "/paywalls/", {"title": "Wide", "remote_configs": configs(en={"x": [wide]})})
        assert too_wide.status_code == 400 and too_wide.json()["errors"][0]["source"] == "remote_configs.0.data"
    for raw in (
        b'{"title": "N", "remote_configs": [{"locale": "en", "data": "{\\"x\\": NaN}"}]}',
        b'{"title": "S", "remote_configs": [{"locale": "en", "data": "{\\"x\\": \\"\\\\udc00\\"}"}]}',
    ):
        response = studio.client.post("/api/admin/v1/paywalls/", content=raw, headers=studio.headers())
        assert response.status_code == 400 and response.json()["errors"][0]["source"] == "remote_configs.0.data", raw
    assert db_snapshot(runtime) == before


def test_integers_at_the_64_bit_edges_are_kept_exactly(studio):
    config = {"largest": 2**64 - 1, "smallest": -(2**63), "digits": "1" * 30, "ratio": 0.1}
    made = paywall(studio, "Edges", remote_configs=configs(en=config))
    assert json.loads(made["remote_configs"][0]["data"]) == config


def test_a_view_at_a_placement_id_longer_than_any_is_refused(studio, runtime):
    shown_paywall = paywall(studio, "Seen")
    studio.create("u")
    before = db_snapshot(runtime)
    view = studio.client.post(
        f"{BASE}/placements/{'p' * 256}/views/",
        headers=studio.headers("u"),
        json={"paywall_id": shown_paywall["paywall_id"], "variation_id": shown_paywall["variation_id"]},
    )
    assert view.status_code == 400 and view.json()["errors"][0]["source"] == "placement_id"
    assert db_snapshot(runtime) == before


def test_audiences_choose_the_paywall_in_priority_order(studio):
    french, premium, everyone = paywall(studio, "French"), paywall(studio, "Upsell"), paywall(studio, "Default")
    studio.admin(
        "POST",
        "/audiences/",
        {
            "audience_id": "france",
            "rules": [
                {"field": "ip_country", "op": "eq", "value": "FR"},
                {"field": "custom_attribute.level", "op": "gt", "value": 2},
            ],
        },
    )
    studio.admin(
        "POST",
        "/audiences/",
        {"audience_id": "payers", "rules": [{"field": "access_level", "op": "has", "value": "premium"}]},
    )
    place(
        studio,
        "onboarding",
        [
            {"audience_id": "payers", "paywall_id": premium["paywall_id"]},
            {"audience_id": "france", "paywall_id": french["paywall_id"]},
            {"paywall_id": everyone["paywall_id"]},
        ],
    )
    studio.create("fr-high", ip_country="FR", custom_attributes=[{"key": "level", "value": 5}])
    studio.create("fr-low", ip_country="FR", custom_attributes=[{"key": "level", "value": 1}])
    studio.create("payer", ip_country="FR", custom_attributes=[{"key": "level", "value": 5}])
    studio.set_transaction(
        "payer",
        **subscription(
            purchased_at="2025-01-01T00:00:00Z",
            originally_purchased_at="2025-01-01T00:00:00Z",
            expires_at="2030-01-01T00:00:00Z",
        ),
    )
    assert shown(studio, "fr-high").json()["paywall_name"] == "French"
    assert shown(studio, "fr-low").json()["paywall_name"] == "Default"
    assert shown(studio, "payer").json()["paywall_name"] == "Upsell"


def test_audiences_that_match_nothing_and_unknown_placements(studio):
    only = paywall(studio, "Only")
    studio.admin(
        "POST", "/audiences/", {"audience_id": "nobody", "rules": [{"field": "store", "op": "in", "value": []}]}
    )
    place(studio, "narrow", [{"audience_id": "nobody", "paywall_id": only["paywall_id"]}])
    studio.create("u")
    missing = shown(studio, "u", placement="narrow")
    assert missing.status_code == 404 and missing.json()["error_code"] == "paywall_does_not_exist"
    assert shown(studio, "u", placement="nowhere").json()["error_code"] == "placement_does_not_exist"
    bad = studio.admin("POST", "/audiences/", {"audience_id": "x", "rules": [{"field": "mood", "op": "eq"}]})
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_enumeration_member"


def test_ab_test_assignment_is_stable_weighted_and_attributes_revenue(studio):
    a, b = paywall(studio, "A"), paywall(studio, "B")
    test = studio.admin(
        "POST",
        "/ab-tests/",
        {
            "name": "Price test",
            "variations": [
                {"paywall_id": a["paywall_id"], "weight": 50},
                {"paywall_id": b["paywall_id"], "weight": 50},
            ],
        },
    )
    assert test.status_code == 201
    test = test.json()["data"]
    place(studio, "onboarding", [{"ab_test_id": test["ab_test_id"]}])
    seen = {}
    for n in range(40):
        studio.create(f"user-{n}")
        first = shown(studio, f"user-{n}", locale="en").json()
        again = shown(studio, f"user-{n}").json()
        assert (first["variation_id"], first["paywall_id"]) == (again["variation_id"], again["paywall_id"])
        assert first["ab_test_name"] == "Price test"
        seen[f"user-{n}"] = first
    assert {body["paywall_name"] for body in seen.values()} == {"A", "B"}

    for user, body in list(seen.items())[:10]:
        view = studio.client.post(
            f"{BASE}/placements/onboarding/views/",
            headers=studio.headers(user),
            json={"paywall_id": body["paywall_id"], "variation_id": body["variation_id"]},
        )
        assert view.status_code == 204
    buyer, body = next(iter(seen.items()))
    studio.set_transaction(buyer, **subscription(variation_id=body["variation_id"]))
    metrics = studio.admin("GET", f"/ab-tests/{test['ab_test_id']}/metrics/").json()["data"]
    by_variation = {v["variation_id"]: v for v in metrics["variations"]}
    bought = by_variation[body["variation_id"]]
    assert bought["purchases"] == 1 and bought["revenue_usd"] == 9.99 and bought["purchasers"] == 1
    assert sum(v["views"] for v in metrics["variations"]) == 10
    assert metrics["variations"][0]["p_value"] is None
    rows = studio.admin("GET", "/paywalls/metrics/").json()["data"]
    assert any(row["variation_id"] == body["variation_id"] and row["purchases"] == 1 for row in rows)


def test_remote_config_locale_fallbacks():
    configs = {"en": {"t": "en"}, "fr": {"t": "fr"}, "pt_BR": {"t": "br"}}
    assert rules.remote_config(configs, "pt-BR")["lang"] == "pt_BR"
    assert rules.remote_config(configs, "fr_CA")["lang"] == "fr"
    assert rules.remote_config(configs, "de")["lang"] == "en"
    assert rules.remote_config({"de": {}}, "ja")["lang"] == "de"
    assert rules.remote_config({}, "en") is None


def test_variation_weights_hold_over_many_profiles():
    variations = [{"variation_id": "a", "weight": 80}, {"variation_id": "b", "weight": 20}]
    picks = [rules.assign_variation("test", f"profile-{n}", variations)["variation_id"] for n in range(5000)]
    assert 0.77 < picks.count("a") / len(picks) < 0.83
    assert rules.assign_variation("test", "p", variations) == rules.assign_variation("test", "p", variations)


def test_significance():
    assert rules.z_test(50, 1000, 50, 1000) == pytest.approx(1.0)
    assert rules.z_test(50, 1000, 100, 1000) < 0.001
    assert rules.z_test(0, 0, 1, 10) is None


FACTS = {
    "store": "app_store",
    "ip_country": "FR",
    "store_country": None,
    "platform": "iOS",
    "custom_attributes": {"level": 3.0, "plan": "gold"},
    "access_levels": {"premium"},
}


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({"field": "store", "op": "eq", "value": "app_store"}, True),
        ({"field": "store", "op": "ne", "value": "app_store"}, False),
        ({"field": "ip_country", "op": "in", "value": ["FR", "DE"]}, True),
        ({"field": "ip_country", "op": "not_in", "value": ["FR"]}, False),
        ({"field": "store_country", "op": "exists"}, False),
        ({"field": "store_country", "op": "not_exists"}, True),
        ({"field": "platform", "op": "eq", "value": "iOS"}, True),
        ({"field": "custom_attribute.level", "op": "gt", "value": 2}, True),
        ({"field": "custom_attribute.level", "op": "lt", "value": 2}, False),
        ({"field": "custom_attribute.plan", "op": "gt", "value": 2}, False),  # not a number: no match
        ({"field": "custom_attribute.missing", "op": "exists"}, False),
        ({"field": "access_level", "op": "has", "value": "premium"}, True),
        ({"field": "access_level", "op": "has_not", "value": "premium"}, False),
    ],
)
def test_every_audience_operator(rule, matches):
    assert rules.rule_matches(rule, FACTS) is matches
